//! The route table is checked at start-up: clashing pages are reported with both locations.

use dstar::{App, Ctx, Event, Html, Mount, Page, Route, View};

macro_rules! page {
    ($name:ident, $path:literal) => {
        struct $name;

        impl Page for $name {
            const ROUTE: Route = Route::new(stringify!($name), $path, file!(), line!());

            async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
                Ok($name)
            }

            fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
                Ok(Html::from(stringify!($name)))
            }

            async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
                Err(event.unknown())
            }
        }
    };
}

page!(UserById, "/users/{id}");
page!(UserByName, "/users/{name}");
page!(NewUser, "/users/new");
page!(ByOwner, "/repos/{owner}/settings");
page!(ByRepo, "/repos/acme/{repo}");

fn app() -> App {
    App::builder().secret_key(b"routes").build().unwrap()
}

#[test]
fn the_same_path_twice_is_refused_with_both_locations() {
    let err = dstar::router![UserById, UserByName]
        .try_into_router::<()>(app())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("dstar: routes both serve `/users/{id}` and `/users/{name}`"),
        "{err}"
    );
    assert!(
        err.contains("(`UserById`)") && err.contains("(`UserByName`)"),
        "{err}"
    );
    assert_eq!(err.matches("tests/tests/routes.rs:").count(), 2, "{err}");
}

#[test]
fn ambiguous_overlaps_are_refused_but_a_more_specific_literal_is_fine() {
    let err = dstar::router![ByOwner, ByRepo]
        .try_into_router::<()>(app())
        .unwrap_err()
        .to_string();
    assert!(err.contains("overlap"), "{err}");
    assert!(
        dstar::router![UserById, NewUser]
            .try_into_router::<()>(app())
            .is_ok()
    );
}

#[test]
#[should_panic(expected = "dstar: routes both serve")]
fn into_router_panics_on_a_clash() {
    let _ = dstar::router![UserById, UserByName].into_router::<()>(app());
}
