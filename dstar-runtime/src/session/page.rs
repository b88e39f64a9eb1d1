//! Type-erased live pages, so one session can hold any page of its group and soft navigation
//! can mount a page it only knows from the route table.

use std::future::Future;
use std::pin::Pin;

use crate::error::Result;
use crate::page::{Ctx, Event, Html, Message, Mount, Page, View};
use crate::route::{Params, Route};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A live page behind a pointer.
pub(crate) trait LivePage: Send {
    fn route(&self) -> &'static Route;
    fn render(&self, view: &View<'_>) -> Result<Html>;
    fn event<'a>(&'a mut self, cx: &'a mut Ctx<'_>, event: Event<'a>) -> BoxFuture<'a, Result<()>>;
    fn info<'a>(&'a mut self, cx: &'a mut Ctx<'_>, message: Message) -> BoxFuture<'a, Result<()>>;
    fn terminate(&mut self) -> BoxFuture<'_, ()>;
    fn connected<'a>(&'a mut self, cx: &'a mut Ctx<'_>) -> BoxFuture<'a, Result<()>>;
}

impl<P: Page> LivePage for P {
    fn route(&self) -> &'static Route {
        &P::ROUTE
    }

    fn render(&self, view: &View<'_>) -> Result<Html> {
        Page::render(self, view)
    }

    fn event<'a>(&'a mut self, cx: &'a mut Ctx<'_>, event: Event<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(Page::event(self, cx, event))
    }

    fn info<'a>(&'a mut self, cx: &'a mut Ctx<'_>, message: Message) -> BoxFuture<'a, Result<()>> {
        Box::pin(Page::info(self, cx, message))
    }

    fn terminate(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(Page::terminate(self))
    }

    fn connected<'a>(&'a mut self, cx: &'a mut Ctx<'_>) -> BoxFuture<'a, Result<()>> {
        Box::pin(Page::connected(self, cx))
    }
}

type MountFn = for<'m, 'a> fn(&'m mut Mount<'a>) -> BoxFuture<'m, Result<Box<dyn LivePage>>>;

/// The type-erased entry points of a live page (used by soft navigation).
#[derive(Clone, Copy)]
pub(crate) struct LiveEntry {
    pub(crate) mount: MountFn,
}

impl std::fmt::Debug for LiveEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEntry").finish_non_exhaustive()
    }
}

impl LiveEntry {
    pub(crate) const fn of<P: Page>() -> Self {
        LiveEntry {
            mount: mount_boxed::<P>,
        }
    }
}

fn mount_boxed<'m, 'a, P: Page>(
    mount: &'m mut Mount<'a>,
) -> BoxFuture<'m, Result<Box<dyn LivePage>>> {
    Box::pin(async move { Ok(Box::new(P::mount(mount).await?) as Box<dyn LivePage>) })
}

/// A live page found in the route table for a path: where soft navigation (and re-mounting)
/// goes.
#[derive(Debug)]
pub(crate) struct LiveTarget {
    pub(crate) route: &'static Route,
    pub(crate) live: LiveEntry,
    pub(crate) params: Params,
}
