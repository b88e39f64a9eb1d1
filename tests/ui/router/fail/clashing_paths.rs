use dstar::{Html, Mount, View};

struct UserById;

#[dstar::page("/users/{id}")]
impl UserById {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(UserById)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }
}

struct NewUser;

// A literal segment is more specific than a parameter: no clash with `UserById`.
#[dstar::page("/users/new")]
impl NewUser {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(NewUser)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }
}

struct UserByName;

#[dstar::page("/users/{name}")]
impl UserByName {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(UserByName)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }
}

fn main() {
    let _ = dstar::router![UserById, NewUser, UserByName];
}
