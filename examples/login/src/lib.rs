//! Login: who the visitor is lives in a private cookie (encrypted with the app's key), read by
//! `mount` on every page load and re-mount, so authorization runs again each time.
//!
//! - `/login` is a stateless page: its `sign_in` event checks the name, sets the cookie with
//!   its answer and sends the browser to the account page, with a flash message the account
//!   page shows once.
//! - `/account` is live: `mount` sends a visitor without the cookie to `/login`, and tags the
//!   session with its user. Its `logout` event removes the cookie and ends every session of
//!   that user at once: each of the user's tabs goes to `/login`, and none of them is ever
//!   re-mounted by its retries, so no tab keeps acting as the user who left.

use dstar::app::AppBuilder;
use dstar::{App, Cookie, Ctx, Error, Html, Mount, SessionEnd, View};
use serde::Deserialize;
use serde_json::json;

/// The cookie naming the signed-in user.
pub const USER_COOKIE: &str = "user";

/// The session tag of `user`'s tabs.
pub fn user_tag(user: &str) -> String {
    format!("user:{user}")
}

/// The login form's signals.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    /// Who signs in.
    pub name: String,
}

/// The login page at `/login`.
#[derive(Debug)]
pub struct Login;

#[dstar::page("/login", template = "login.html", title = "Sign in")]
impl Login {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Login)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(())
    }

    #[event]
    async fn sign_in(&mut self, cx: &mut Ctx<'_>, form: Credentials) -> dstar::Result<()> {
        let name = form.name.trim();
        if name.is_empty() || name.len() > 40 || !name.chars().all(char::is_alphanumeric) {
            return cx.patch_signals(&json!({ "problem": "a name is 1 to 40 letters or digits" }));
        }
        cx.set_cookie(Cookie::new(USER_COOKIE, name).private())?;
        cx.flash("info", format!("Welcome, {name}."));
        cx.redirect("/account")
    }
}

/// The signed-in user's live page at `/account`.
#[derive(Debug)]
pub struct Account {
    user: String,
    clicks: u32,
}

#[dstar::page("/account", live, template = "account.html", title = "Account")]
impl Account {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        let Some(user) = mount.cookies().private(USER_COOKIE) else {
            return Err(Error::redirect("/login"));
        };
        mount.tag(user_tag(&user));
        Ok(Account { user, clicks: 0 })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(json!({ "user": self.user, "clicks": self.clicks }))
    }

    #[event]
    async fn click(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
        self.clicks += 1;
        Ok(())
    }

    /// Signs the user out of every tab.
    #[event]
    async fn logout(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        cx.set_cookie(Cookie::removal(USER_COOKIE))?;
        cx.app()
            .sessions()
            .end_tagged(&user_tag(&self.user), SessionEnd::Navigate("/login".into()));
        Ok(())
    }
}

/// The login app; `builder` carries settings such as where the Datastar client is served.
pub fn app(builder: AppBuilder) -> App {
    builder
        .templates(dstar::templates!("templates"))
        .build()
        .expect("the login app's configuration is complete")
}

/// The login app's routes.
pub fn router(app: &App) -> axum::Router {
    dstar::router![Login, Account].into_router(app.clone())
}
