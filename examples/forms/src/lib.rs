//! Forms: a new item's name and quantity, read as a typed `Form<NewItem>`.
//!
//! - Each field's error shows next to it (`field_error(errors, "name")`), and what the person
//!   typed stays, since the inputs are bound to signals.
//! - A quantity that is not a number is that field's error, not a refused request.
//! - The name is checked as it is typed (a debounced event), and a name already taken, which
//!   only the server can know, is reported the same way.
//! - Saving sends the browser to the list with a flash message, shown once.

use std::sync::Mutex;

use dstar::app::AppBuilder;
use dstar::{App, Ctx, FieldErrors, Form, Html, Mount, Validate, View};
use serde::Deserialize;
use serde_json::json;

/// The items saved so far (the app's state).
#[derive(Debug, Default)]
pub struct Items(pub Mutex<Vec<(String, u32)>>);

/// The new-item form.
#[derive(Debug, Deserialize)]
pub struct NewItem {
    /// What the item is called: 1 to 30 characters.
    pub name: String,
    /// How many: 1 to 1000.
    pub quantity: u32,
}

impl Validate for NewItem {
    fn validate(&self, errors: &mut FieldErrors) {
        let name = self.name.trim();
        if name.is_empty() {
            errors.add("name", "is required");
        } else if name.chars().count() > 30 {
            errors.add("name", "is at most 30 characters");
        }
        if !(1..=1000).contains(&self.quantity) {
            errors.add("quantity", "must be between 1 and 1000");
        }
    }
}

/// The form page at `/items/new`.
#[derive(Debug, Default)]
pub struct NewItemPage {
    errors: FieldErrors,
}

#[dstar::page("/items/new", template = "new.html", title = "New item")]
impl NewItemPage {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(NewItemPage::default())
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(json!({ "errors": self.errors }))
    }

    /// Checks the name as it is typed: only its own error shows, the others wait for Save.
    #[event]
    async fn check(&mut self, cx: &mut Ctx<'_>, form: Form<NewItem>) -> dstar::Result<()> {
        let name = form
            .values()
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let mut errors = FieldErrors::new();
        if let Err(all) = form.validate()
            && let Some(message) = all.get("name")
        {
            errors.add("name", message);
        }
        if errors.is_empty() && taken(cx.state::<Items>()?, &name) {
            errors.add("name", "is already taken");
        }
        self.errors = errors;
        cx.render();
        Ok(())
    }

    #[event]
    async fn save(&mut self, cx: &mut Ctx<'_>, form: Form<NewItem>) -> dstar::Result<()> {
        let item = match form.validate() {
            Ok(item) => item,
            Err(errors) => {
                self.errors = errors;
                cx.render();
                return Ok(());
            }
        };
        let name = item.name.trim().to_owned();
        {
            let items = cx.state::<Items>()?;
            let mut items = items.0.lock().unwrap_or_else(|e| e.into_inner());
            if items
                .iter()
                .any(|(existing, _)| existing.eq_ignore_ascii_case(&name))
            {
                drop(items);
                self.errors.add("name", "is already taken");
                cx.render();
                return Ok(());
            }
            items.push((name.clone(), item.quantity));
        }
        cx.flash("info", format!("Added {} × {name}.", item.quantity));
        cx.redirect("/items")
    }
}

fn taken(items: &Items, name: &str) -> bool {
    let items = items.0.lock().unwrap_or_else(|e| e.into_inner());
    items
        .iter()
        .any(|(existing, _)| existing.eq_ignore_ascii_case(name.trim()))
}

/// The list at `/items`.
#[derive(Debug)]
pub struct ItemList {
    items: Vec<(String, u32)>,
}

#[dstar::page("/items", template = "items.html", title = "Items")]
impl ItemList {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        let items = mount.state::<Items>()?;
        let items = items.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(ItemList { items })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(json!({ "items": self.items }))
    }
}

/// The forms app; `builder` carries settings such as where the Datastar client is served.
pub fn app(builder: AppBuilder) -> App {
    builder
        .templates(dstar::templates!("templates"))
        .state(Items::default())
        .build()
        .expect("the forms app's configuration is complete")
}

/// The forms app's routes.
pub fn router(app: &App) -> axum::Router {
    dstar::router![NewItemPage, ItemList].into_router(app.clone())
}
