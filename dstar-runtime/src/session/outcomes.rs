//! What happened recently: the answers of live events, by the click that sent them, so an
//! event sent again is answered once and applied once; and the sessions ended on purpose, so
//! their tabs are told so rather than re-mounted.
//!
//! # Clicks
//!
//! A live page's `event()` action sends a click id ([`CLICK_HEADER`](crate::protocol::CLICK_HEADER),
//! made in the browser for each click) and retries a failed request a bounded number of times
//! with the same headers. A retry of a click the session already handled gets the first
//! answer again instead of running the handler twice; a retry that arrives while the first
//! attempt is still being handled is told to wait (`503`, not applied). Events refused before
//! they reached the session (bad token, bad signals, a session that is not running, a full
//! mailbox) leave no trace, so sending them again is an ordinary new attempt.
//!
//! The log is bounded twice: an entry is kept [`KEEP`] (longer than the client's whole retry
//! series), and at most [`CAPACITY`] entries are kept (the oldest go first), so its memory
//! is bounded whatever the traffic. Past either bound a retry is a new attempt: at more than
//! [`CAPACITY`] events in [`KEEP`], a retry of an event whose answer was lost can run twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::error::Error;

/// How long the answer to a click is kept.
pub(crate) const KEEP: Duration = Duration::from_secs(60);
/// The most clicks remembered at once.
pub(crate) const CAPACITY: usize = 16_384;

/// The longest click id accepted; longer ones are refused (`400`).
pub(crate) const MAX_CLICK_LEN: usize = 64;

type Key = (u128, Box<str>);

/// The log of recent clicks' answers.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    answers: HashMap<Key, Answer>,
    /// Insertion order, for expiry and the cap.
    order: VecDeque<(Instant, Key)>,
}

#[derive(Debug, Clone)]
enum Answer {
    Pending,
    /// `None`: the event succeeded; otherwise the error's status and message.
    Done(Option<(StatusCode, String)>),
}

/// What to do with a click.
#[derive(Debug)]
pub(crate) enum Begin {
    /// Not seen before: send it to the session, then [`Outcomes::finish`] it.
    New,
    /// Seen: answer this, without sending it.
    Answered(Result<(), Error>),
}

impl Outcomes {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks click `click` of session `session` up, and marks a new one as being handled.
    pub(crate) fn begin(&self, session: u128, click: &str) -> Begin {
        let now = Instant::now();
        let mut state = self.lock();
        state.expire(now);
        let key: Key = (session, click.into());
        match state.answers.get(&key) {
            Some(Answer::Pending) => Begin::Answered(Err(Error::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "this event is still being handled; send it again to get its answer",
            ))),
            Some(Answer::Done(None)) => Begin::Answered(Ok(())),
            Some(Answer::Done(Some((status, message)))) => {
                Begin::Answered(Err(Error::new(*status, message.clone())))
            }
            None => {
                state.answers.insert(key.clone(), Answer::Pending);
                state.order.push_back((now, key));
                Begin::New
            }
        }
    }

    /// Records the answer of a click that reached its session.
    pub(crate) fn finish<T>(&self, session: u128, click: &str, result: &Result<T, Error>) {
        let mut state = self.lock();
        if let Some(answer) = state.answers.get_mut(&(session, Box::from(click))) {
            *answer = Answer::Done(
                result
                    .as_ref()
                    .err()
                    .map(|err| (err.status(), err.message().to_owned())),
            );
        }
    }

    /// Forgets a click that never reached its session (it was not applied).
    pub(crate) fn forget(&self, session: u128, click: &str) {
        // Its entry in `order` expires with the others.
        self.lock().answers.remove(&(session, Box::from(click)));
    }
}

impl State {
    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < KEEP && self.order.len() < CAPACITY {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.answers.remove(&key);
            }
        }
        if self.order.is_empty() && self.order.capacity() > 64 {
            // Back to (almost) nothing once traffic stops.
            *self = State::default();
        }
    }
}

/// How long a session ended on purpose is remembered.
pub(crate) const ENDED_KEEP: Duration = Duration::from_secs(3600);
/// The most ended sessions remembered at once.
pub(crate) const ENDED_CAPACITY: usize = 4096;

/// Sessions ended on purpose (`Ctx::end_session`) and how each left its tab, so a later
/// stream of the tab gets the same last instruction (never a re-mount) and its events `410`.
///
/// Bounded like the click log: [`ENDED_KEEP`] and [`ENDED_CAPACITY`] (the oldest go first).
/// A tab that comes back after that (a laptop asleep for hours) is treated as any tab whose
/// session is gone: re-mounted, with `mount` authorizing it again from the request's cookies,
/// which after a logout refuses or redirects it. The memory is a courtesy; `mount` is the
/// guard.
#[derive(Debug, Default)]
pub(crate) struct Ended {
    state: Mutex<EndedState>,
}

#[derive(Debug, Default)]
struct EndedState {
    ends: HashMap<u128, (Instant, crate::page::SessionEnd)>,
    order: VecDeque<(Instant, u128)>,
}

impl Ended {
    fn lock(&self) -> std::sync::MutexGuard<'_, EndedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that session `id` ended on purpose, leaving its tab with `end`.
    pub(crate) fn insert(&self, id: u128, end: crate::page::SessionEnd) {
        let now = Instant::now();
        let mut state = self.lock();
        while let Some((at, old)) = state.order.front().copied() {
            if now.duration_since(at) < ENDED_KEEP && state.order.len() < ENDED_CAPACITY {
                break;
            }
            state.order.pop_front();
            if state.ends.get(&old).is_some_and(|(when, _)| *when == at) {
                state.ends.remove(&old);
            }
        }
        state.ends.insert(id, (now, end));
        state.order.push_back((now, id));
    }

    /// How session `id` ended, if it ended on purpose recently.
    pub(crate) fn get(&self, id: u128) -> Option<crate::page::SessionEnd> {
        let state = self.lock();
        let (at, end) = state.ends.get(&id)?;
        (at.elapsed() < ENDED_KEEP).then(|| end.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::page::SessionEnd;
    use crate::session::outcomes::{
        Begin, CAPACITY, ENDED_CAPACITY, Ended, Error, Outcomes, StatusCode,
    };

    #[test]
    fn ended_sessions_are_remembered_within_the_bound() {
        let ended = Ended::default();
        assert_eq!(ended.get(1), None);
        ended.insert(1, SessionEnd::Navigate("/bye".into()));
        assert_eq!(ended.get(1), Some(SessionEnd::Navigate("/bye".into())));
        for id in 2..(ENDED_CAPACITY as u128 + 2) {
            ended.insert(id, SessionEnd::Stop);
        }
        assert_eq!(ended.get(1), None, "the oldest went first");
        assert_eq!(ended.get(2), Some(SessionEnd::Stop));
        assert!(ended.lock().ends.len() <= ENDED_CAPACITY);
    }

    #[test]
    fn a_click_is_answered_once_and_replayed_after() {
        let log = Outcomes::default();
        assert!(matches!(log.begin(1, "a"), Begin::New));
        // While it is being handled, a retry waits.
        match log.begin(1, "a") {
            Begin::Answered(Err(err)) => assert_eq!(err.status(), 503),
            other => panic!("{other:?}"),
        }
        log.finish::<()>(1, "a", &Err(Error::unprocessable("bad amount")));
        match log.begin(1, "a") {
            Begin::Answered(Err(err)) => {
                assert_eq!(
                    (err.status(), err.message()),
                    (StatusCode::UNPROCESSABLE_ENTITY, "bad amount")
                );
            }
            other => panic!("{other:?}"),
        }
        // Another session's click of the same id is its own.
        assert!(matches!(log.begin(2, "a"), Begin::New));
        log.finish(2, "a", &Ok(()));
        assert!(matches!(log.begin(2, "a"), Begin::Answered(Ok(()))));
        // A forgotten click is new again.
        assert!(matches!(log.begin(3, "b"), Begin::New));
        log.forget(3, "b");
        assert!(matches!(log.begin(3, "b"), Begin::New));
    }

    #[test]
    fn the_log_is_capped() {
        let log = Outcomes::default();
        for i in 0..CAPACITY + 10 {
            assert!(matches!(log.begin(1, &i.to_string()), Begin::New));
        }
        let state = log.lock();
        assert!(state.answers.len() <= CAPACITY);
        assert!(state.order.len() <= CAPACITY);
        drop(state);
        // The oldest went first.
        assert!(matches!(log.begin(1, "0"), Begin::New));
    }
}
