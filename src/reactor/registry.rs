//! The registry of event sources: a slab indexed by `Token` (index + generation), and an index by fd.
//!
//! A source is either a host's fd callbacks (`reactor_add_reader`/`_writer`, see `host_fds.rs`) or an
//! internal source of the library (a listening socket, a transport, a pidfd...; see `Source`). The
//! backend reports `(token, readiness)`; `Reactor::dispatch_event` finds the source and calls its
//! handler. An event whose token's generation no longer matches (the source was removed, maybe
//! replaced on a reused fd number) is dropped. Internal fds are never visible to the host fd API.

use super::Reactor;
use super::host_fds::HostFd;
use crate::backend::{Interest, PollEvent, Token, Watch};
use crate::status::{Error, Result};
use std::os::raw::c_int;
use std::rc::Rc;

/// An event source implemented by the library. It runs on the reactor thread only.
pub trait Source {
    /// The backend reported readiness for this source's token.
    fn ready(self: Rc<Self>, reactor: &Reactor, event: PollEvent);

    /// The reactor's own DURING-shutdown step (before the host's DURING triggers): close down.
    fn shutdown(self: Rc<Self>, reactor: &Reactor) {
        let _ = reactor;
    }
}

/// Boxed so that a registry entry stays small for the library's own sources (a network server holds
/// one entry per connection).
pub enum Handler {
    Host(Box<HostFd>),
    Internal(Rc<dyn Source>),
}

impl Handler {
    /// A registration refused after all: host data stays the host's (it is not released).
    pub(super) fn give_back(self) {
        if let Handler::Host(host) = self {
            for handler in host.into_handlers() {
                handler.data.into_raw();
            }
        }
    }
}

struct Entry {
    generation: u32,
    /// The fd; for a watch, what it watches (a pid, a signal number).
    fd: c_int,
    interest: Interest,
    /// What `fd` holds. One byte in what would be padding: an entry stays 40 bytes (a server has
    /// one per connection).
    kind: EntryKind,
    handler: Option<Handler>,
}

/// An fd, or a non-fd event the backend watches natively (kqueue's EVFILT_PROC) instead.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Fd,
    ProcessWatch,
    SignalWatch,
}

impl EntryKind {
    fn of(watch: Option<Watch>) -> (EntryKind, Option<c_int>) {
        match watch {
            None => (EntryKind::Fd, None),
            Some(Watch::Process(pid)) => (EntryKind::ProcessWatch, Some(pid)),
            Some(Watch::Signal(signal)) => (EntryKind::SignalWatch, Some(signal)),
        }
    }
}

impl Entry {
    fn watch(&self) -> Option<Watch> {
        match self.kind {
            EntryKind::Fd => None,
            EntryKind::ProcessWatch => Some(Watch::Process(self.fd)),
            EntryKind::SignalWatch => Some(Watch::Signal(self.fd)),
        }
    }
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Entry>() <= 40);

#[derive(Default)]
pub struct Registry {
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Indexed by fd number: 1 + the entry index of the source registered on that fd, 0 for none
    /// (4 bytes an fd: a server has one per connection; the generation is the entry's).
    by_fd: Vec<u32>,
    host_count: usize,
}

/// Index u32::MAX is never allocated: backends may use an all-ones token for their own fds.
const MAX_ENTRIES: usize = u32::MAX as usize;

impl Registry {
    /// Host fds registered (for statistics).
    pub fn host_len(&self) -> usize {
        self.host_count
    }

    pub fn token_for_fd(&self, fd: c_int) -> Option<Token> {
        let index = self.by_fd.get(usize::try_from(fd).ok()?)?.checked_sub(1)?;
        let generation = self.entries[index as usize].generation;
        Some(Token::new(index, generation))
    }

    /// Adds a source on `fd` (the caller registers it with the backend). On error the handler is
    /// handed back (host data in it is not ours to release).
    pub fn insert(
        &mut self,
        fd: c_int,
        interest: Interest,
        handler: Handler,
    ) -> std::result::Result<Token, (Error, Handler)> {
        let Ok(fd_index) = usize::try_from(fd) else {
            return Err((Error::Invalid, handler));
        };
        if self.token_for_fd(fd).is_some() {
            return Err((Error::Busy, handler));
        }
        let token = self.allocate(fd, interest, handler, None)?;
        if self.by_fd.len() <= fd_index {
            self.by_fd.resize(fd_index + 1, 0);
        }
        self.by_fd[fd_index] = token.index() + 1;
        Ok(token)
    }

    /// Adds a source for a non-fd watch (the caller starts the watch with the backend).
    pub fn insert_watch(
        &mut self,
        watch: Watch,
        handler: Handler,
    ) -> std::result::Result<Token, (Error, Handler)> {
        self.allocate(-1, Interest::READ, handler, Some(watch))
    }

    /// The watch of a watch source (`None` for fd sources and stale tokens).
    pub fn watch(&self, token: Token) -> Option<Watch> {
        self.entry(token)?.watch()
    }

    fn allocate(
        &mut self,
        fd: c_int,
        interest: Interest,
        handler: Handler,
        watch: Option<Watch>,
    ) -> std::result::Result<Token, (Error, Handler)> {
        let index = match self.free.pop() {
            Some(index) => index as usize,
            None if self.entries.len() < MAX_ENTRIES => {
                self.entries.push(Entry {
                    generation: 1,
                    fd: -1,
                    interest: Interest::default(),
                    handler: None,
                    kind: EntryKind::Fd,
                });
                self.entries.len() - 1
            }
            None => return Err((Error::NoMem, handler)),
        };
        if matches!(handler, Handler::Host(_)) {
            self.host_count += 1;
        }
        let entry = &mut self.entries[index];
        let (kind, ident) = EntryKind::of(watch);
        entry.fd = ident.unwrap_or(fd);
        entry.interest = interest;
        entry.handler = Some(handler);
        entry.kind = kind;
        Ok(Token::new(index as u32, entry.generation))
    }

    fn entry(&self, token: Token) -> Option<&Entry> {
        self.entries
            .get(token.index() as usize)
            .filter(|e| e.generation == token.generation() && e.handler.is_some())
    }

    fn entry_mut(&mut self, token: Token) -> Option<&mut Entry> {
        self.entries
            .get_mut(token.index() as usize)
            .filter(|e| e.generation == token.generation() && e.handler.is_some())
    }

    /// The fd of an fd source (`None` for watches and stale tokens).
    pub fn fd(&self, token: Token) -> Option<c_int> {
        self.entry(token)
            .filter(|e| e.kind == EntryKind::Fd)
            .map(|e| e.fd)
    }

    pub fn interest(&self, token: Token) -> Option<Interest> {
        self.entry(token).map(|e| e.interest)
    }

    pub fn set_interest(&mut self, token: Token, interest: Interest) {
        if let Some(entry) = self.entry_mut(token) {
            entry.interest = interest;
        }
    }

    pub fn handler(&self, token: Token) -> Option<&Handler> {
        self.entry(token)?.handler.as_ref()
    }

    pub fn handler_mut(&mut self, token: Token) -> Option<&mut Handler> {
        self.entry_mut(token)?.handler.as_mut()
    }

    /// Removes a source; its token (and every event carrying it) becomes stale.
    pub fn remove(&mut self, token: Token) -> Option<(c_int, Handler)> {
        let entry = self.entry_mut(token)?;
        let handler = entry.handler.take()?;
        let fd = entry.fd;
        // Never 0: a token is never 0 (see `Token`).
        entry.generation = entry.generation.checked_add(1).unwrap_or(1);
        let was_fd = entry.kind == EntryKind::Fd;
        let fd = if was_fd { fd } else { -1 };
        entry.fd = -1;
        entry.kind = EntryKind::Fd;
        if matches!(handler, Handler::Host(_)) {
            self.host_count -= 1;
        }
        if let Ok(fd_index) = usize::try_from(fd)
            && let Some(slot) = self.by_fd.get_mut(fd_index)
            && *slot == token.index() + 1
        {
            *slot = 0;
        }
        self.free.push(token.index());
        Some((fd, handler))
    }

    /// Every fd registration: fd, token and what it wants (to re-add them to a new backend).
    pub fn registrations(&self) -> Vec<(c_int, Token, Interest)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.handler.is_some() && e.kind == EntryKind::Fd)
            .map(|(i, e)| (e.fd, Token::new(i as u32, e.generation), e.interest))
            .collect()
    }

    /// Tokens of watch sources.
    pub fn watch_tokens(&self) -> Vec<Token> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.handler.is_some() && e.kind != EntryKind::Fd)
            .map(|(i, e)| Token::new(i as u32, e.generation))
            .collect()
    }

    /// Tokens of host sources, by ascending fd.
    pub fn host_tokens(&self) -> Vec<Token> {
        self.tokens(|h| matches!(h, Handler::Host(_)))
    }

    /// Tokens of internal sources, by ascending fd.
    pub fn internal_tokens(&self) -> Vec<Token> {
        self.tokens(|h| matches!(h, Handler::Internal(_)))
    }

    fn tokens(&self, wanted: impl Fn(&Handler) -> bool) -> Vec<Token> {
        (0..self.by_fd.len())
            .filter_map(|fd| self.token_for_fd(fd as c_int))
            .filter(|t| self.handler(*t).is_some_and(&wanted))
            .collect()
    }
}

impl Reactor {
    /// Registers an internal source on `fd` (an fd of the library's own). A host registration still
    /// held on that fd number belongs to a file that was closed behind its back: it is dropped (and
    /// released) first.
    pub fn register_source(
        &self,
        fd: c_int,
        interest: Interest,
        source: Rc<dyn Source>,
    ) -> Result<Token> {
        if let Some(stale) = self.sources.borrow().token_for_fd(fd) {
            self.drop_source(stale);
        }
        let token = self
            .sources
            .borrow_mut()
            .insert(fd, interest, Handler::Internal(source))
            .map_err(|(e, _)| e)?;
        super::stats::bump(&self.stats.backend_ctl_calls);
        let added = self.backend.borrow_mut().add_owned(fd, token, interest);
        if let Err(e) = added {
            self.sources.borrow_mut().remove(token);
            return Err(e);
        }
        Ok(token)
    }

    /// Registers an internal source for a non-fd watch; `Error::Unsupported` where the backend has
    /// no native form of it.
    pub fn register_watch(&self, watch: Watch, source: Rc<dyn Source>) -> Result<Token> {
        let token = self
            .sources
            .borrow_mut()
            .insert_watch(watch, Handler::Internal(source))
            .map_err(|(e, _)| e)?;
        super::stats::bump(&self.stats.backend_ctl_calls);
        let added = self.backend.borrow_mut().add_watch(watch, token);
        if let Err(e) = added {
            self.sources.borrow_mut().remove(token);
            return Err(e);
        }
        Ok(token)
    }

    /// Changes what an internal source wants to hear about.
    pub fn modify_source(&self, token: Token, interest: Interest) -> Result<()> {
        let fd = self.sources.borrow().fd(token).ok_or(Error::NotFound)?;
        super::stats::bump(&self.stats.backend_ctl_calls);
        self.backend
            .borrow_mut()
            .modify_owned(fd, token, interest)
            .map_err(|e| match e {
                crate::backend::ModifyError::Stale => Error::Os(libc::EBADF),
                crate::backend::ModifyError::Other(e) => e,
            })?;
        self.sources.borrow_mut().set_interest(token, interest);
        Ok(())
    }

    /// Hands an internal source's registration (its fd and token) over to `source`, with a new
    /// interest: one backend update instead of a removal and a new registration (a connector giving
    /// its connected socket to the transport it made).
    pub fn hand_over_source(
        &self,
        token: Token,
        source: Rc<dyn Source>,
        interest: Interest,
    ) -> Result<()> {
        let old = {
            let mut sources = self.sources.borrow_mut();
            let handler = sources.handler_mut(token).ok_or(Error::NotFound)?;
            std::mem::replace(handler, Handler::Internal(source))
        };
        drop(old);
        self.modify_source(token, interest)
    }

    /// Removes a source (before its fd is closed). The handler is dropped after the registry borrow
    /// ends; host data goes through `retire`.
    pub fn deregister_source(&self, token: Token) -> Result<()> {
        if self.sources.borrow().handler(token).is_none() {
            return Err(Error::NotFound);
        }
        self.drop_source(token);
        Ok(())
    }

    pub(super) fn drop_source(&self, token: Token) {
        let watch = self.sources.borrow().watch(token);
        let removed = self.sources.borrow_mut().remove(token);
        let Some((fd, handler)) = removed else {
            return;
        };
        super::stats::bump(&self.stats.backend_ctl_calls);
        self.backend_forget(fd, watch);
        self.retire_handler(handler);
    }

    /// Ends the backend's registration of an fd or a watch. The fd may already be closed, the
    /// watched process gone: nothing to undo then.
    fn backend_forget(&self, fd: c_int, watch: Option<Watch>) {
        let mut backend = self.backend.borrow_mut();
        let _ = match watch {
            Some(watch) => backend.remove_watch(watch),
            None => backend.remove(fd),
        };
    }

    fn retire_handler(&self, handler: Handler) {
        match handler {
            Handler::Host(host) => host.retire_into(self),
            Handler::Internal(source) => drop(source),
        }
    }

    /// Dispatches one collected event to its source, if the source is still the one it was for.
    pub(super) fn dispatch_event(&self, event: PollEvent) {
        // One lookup; the handler is copied out so no borrow is held while it runs.
        let target = match self.sources.borrow().entry(event.token) {
            None => return, // stale: removed or replaced since the poll
            Some(Entry {
                handler: Some(Handler::Internal(source)),
                ..
            }) => Err(source.clone()),
            Some(entry) => Ok(entry.fd),
        };
        match target {
            Ok(fd) => self.dispatch_host_event(event, fd),
            Err(source) => source.ready(self, event),
        }
    }

    /// The reactor's own DURING-shutdown step for sources: host fds get `REACTOR_SHUTDOWN` and are
    /// removed; internal sources close down.
    pub(super) fn shutdown_sources(&self) {
        self.shutdown_host_fds();
        let internal = self.sources.borrow().internal_tokens();
        for token in internal {
            let source = match self.sources.borrow().handler(token) {
                Some(Handler::Internal(source)) => source.clone(),
                _ => continue,
            };
            source.shutdown(self);
        }
    }

    /// Every source, for teardown (`reactor_free`): removed from the backend, handlers returned.
    pub(super) fn take_all_sources(&self) -> Vec<Handler> {
        let tokens: Vec<Token> = {
            let sources = self.sources.borrow();
            let mut all = sources.host_tokens();
            all.extend(sources.internal_tokens());
            all.extend(sources.watch_tokens());
            all
        };
        let mut handlers = Vec::new();
        for token in tokens {
            let watch = self.sources.borrow().watch(token);
            let removed = self.sources.borrow_mut().remove(token);
            if let Some((fd, handler)) = removed {
                self.backend_forget(fd, watch);
                handlers.push(handler);
            }
        }
        handlers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Handler {
        Handler::Host(Box::default())
    }

    #[test]
    fn generations_skip_zero_when_they_wrap() {
        // A token is never 0 (`Option<Token>` relies on it): a slot's generation goes from
        // u32::MAX to 1, and the token from before the wrap is stale.
        let mut registry = Registry::default();
        let first = registry.insert(3, Interest::READ, host()).ok().unwrap();
        assert_eq!(first.generation(), 1, "generations start at 1");
        registry.entries[first.index() as usize].generation = u32::MAX;
        let last = registry.token_for_fd(3).unwrap();
        assert_eq!(last.generation(), u32::MAX);
        assert!(registry.remove(last).is_some());
        let next = registry.insert(3, Interest::READ, host()).ok().unwrap();
        assert_eq!(next.index(), last.index());
        assert_eq!(next.generation(), 1);
        assert_ne!(next.raw(), 0);
        assert!(
            registry.handler(last).is_none(),
            "the token from before the wrap is stale"
        );
        assert!(
            registry.handler(next).is_some(),
            "the new token reaches its source"
        );
    }

    #[test]
    fn watches_take_no_fd_and_are_not_re_added_as_fds() {
        let mut registry = Registry::default();
        let fd_source = registry.insert(0, Interest::READ, host()).ok().unwrap();
        let watch = registry
            .insert_watch(Watch::Process(4242), host())
            .ok()
            .unwrap();
        assert_eq!(registry.watch(watch), Some(Watch::Process(4242)));
        assert_eq!(registry.watch(fd_source), None);
        assert_eq!(
            registry.token_for_fd(0),
            Some(fd_source),
            "fd 0 is not the watch's"
        );
        assert_eq!(registry.watch_tokens(), vec![watch]);
        assert_eq!(registry.host_tokens(), vec![fd_source]);
        let fds: Vec<c_int> = registry.registrations().iter().map(|r| r.0).collect();
        assert_eq!(fds, vec![0]);
        let (fd, _) = registry.remove(watch).unwrap();
        assert_eq!(fd, -1);
        assert_eq!(
            registry.token_for_fd(0),
            Some(fd_source),
            "removal left fd 0 alone"
        );
        assert!(registry.watch_tokens().is_empty());
        assert_eq!(registry.watch(watch), None, "stale token");
    }

    #[test]
    fn tokens_go_stale_when_removed_and_slots_are_reused() {
        let mut registry = Registry::default();
        let a = registry.insert(5, Interest::READ, host()).ok().unwrap();
        assert_eq!(registry.token_for_fd(5), Some(a));
        assert_eq!(
            registry
                .insert(5, Interest::READ, host())
                .err()
                .map(|e| e.0),
            Some(Error::Busy)
        );
        assert_eq!(registry.host_len(), 1);
        let (fd, _) = registry.remove(a).unwrap();
        assert_eq!(fd, 5);
        assert!(registry.handler(a).is_none(), "stale token");
        assert!(registry.remove(a).is_none());
        let b = registry.insert(5, Interest::WRITE, host()).ok().unwrap();
        assert_eq!(a.index(), b.index(), "slot reused");
        assert_ne!(a, b, "with a new generation");
        assert_eq!(registry.interest(b), Some(Interest::WRITE));
        assert_eq!(registry.host_tokens(), vec![b]);
        assert!(registry.internal_tokens().is_empty());
        assert_eq!(
            registry
                .insert(-1, Interest::READ, host())
                .err()
                .map(|e| e.0),
            Some(Error::Invalid)
        );
    }
}

#[cfg(test)]
mod internal_source_tests {
    use super::*;
    use crate::backend::BackendKind;
    use crate::callback::UserData;
    use crate::reactor::{Direction, FdHandler, Options};
    use crate::types::reactor_t;
    use std::cell::Cell;
    use std::os::raw::c_void;

    /// An internal source on a pipe's read end: counts readiness (draining the pipe) and shutdowns.
    struct PipeSource {
        fd: c_int,
        ready: Cell<u32>,
        shutdowns: Cell<u32>,
    }

    impl Source for PipeSource {
        fn ready(self: Rc<Self>, _reactor: &Reactor, _event: PollEvent) {
            self.ready.set(self.ready.get() + 1);
            let mut buf = [0u8; 16];
            // SAFETY: a valid buffer; the fd is the test's non-blocking pipe.
            unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
        }

        fn shutdown(self: Rc<Self>, _reactor: &Reactor) {
            self.shutdowns.set(self.shutdowns.get() + 1);
        }
    }

    unsafe extern "C" fn host_fd_cb(_: *mut reactor_t, _: c_int, _: u32, _: *mut c_void) {}

    fn poke(fd: c_int) {
        // SAFETY: writes one byte from a local to the test's pipe.
        assert_eq!(unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) }, 1);
    }

    #[test]
    fn internal_sources_get_their_events_and_keep_their_fds_from_hosts() {
        let backends: &[BackendKind] = if cfg!(target_os = "linux") {
            &[BackendKind::Epoll, BackendKind::Poll]
        } else {
            &[BackendKind::Poll]
        };
        for &backend in backends {
            let reactor = Reactor::new(Options {
                backend,
                install_signal_handlers: false,
                manual_clock: false,
                thread_pool_max: 1,
            })
            .unwrap();
            let mut p = [0 as c_int; 2];
            // SAFETY: a valid out-array.
            assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
            // SAFETY: our fd.
            unsafe { libc::fcntl(p[0], libc::F_SETFL, libc::O_NONBLOCK) };
            let source = Rc::new(PipeSource {
                fd: p[0],
                ready: Cell::new(0),
                shutdowns: Cell::new(0),
            });
            let token = reactor
                .register_source(p[0], Interest::READ, source.clone())
                .unwrap();

            poke(p[1]);
            reactor.iterate(5.0).unwrap();
            assert_eq!(source.ready.get(), 1, "{backend:?}: dispatched by token");

            // The fd is the library's: hosts can neither take it nor see it.
            let handler = FdHandler {
                func: host_fd_cb,
                data: UserData::new(std::ptr::null_mut(), None),
            };
            let refused = reactor.add_fd_handler(p[0], Direction::Read, handler);
            assert_eq!(refused.err(), Some(Error::Invalid));
            assert!(reactor.fds_with(Direction::Read).is_empty());
            assert!(reactor.remove_all_fds().is_empty());

            // No interest: no events; read interest again: the pending byte is reported.
            reactor.modify_source(token, Interest::default()).unwrap();
            poke(p[1]);
            reactor.iterate(0.0).unwrap();
            assert_eq!(source.ready.get(), 1, "{backend:?}: no interest, no event");
            reactor.modify_source(token, Interest::READ).unwrap();
            reactor.iterate(5.0).unwrap();
            assert_eq!(source.ready.get(), 2, "{backend:?}: interest restored");

            // DURING-shutdown reaches internal sources.
            reactor.fire_system_event(b"shutdown").unwrap();
            assert_eq!(source.shutdowns.get(), 1);

            // Removed: its token is stale and later bytes reach nobody.
            reactor.deregister_source(token).unwrap();
            assert_eq!(
                reactor.deregister_source(token).err(),
                Some(Error::NotFound)
            );
            poke(p[1]);
            reactor.iterate(0.0).unwrap();
            assert_eq!(
                source.ready.get(),
                2,
                "{backend:?}: removed source gets nothing"
            );
            drop(reactor);
            // SAFETY: closing our own fds.
            unsafe {
                libc::close(p[0]);
                libc::close(p[1]);
            }
        }
    }
}
