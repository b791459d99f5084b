//! The kqueue backend (the default on macOS and the BSDs; Twisted's KQueueReactor). Reader and writer
//! are independent filters (EVFILT_READ, EVFILT_WRITE) of one fd. Modifications are batched: they go
//! to the kernel with the next wait (one `kevent` call submits the changes and collects events);
//! additions are checked at once (a closed fd is refused in the call), removals are submitted at once
//! (with whatever was pending), because the fd is usually closed right after and libkqueue wants the
//! registration gone before the close. A change the kernel refuses at the wait (its fd was closed
//! behind our back) comes back as a `closed` event for its token, so the registry drops it, as poll's
//! POLLNVAL does.
//!
//! The waker: EVFILT_USER where the platform has it in its kernel (macOS, FreeBSD, NetBSD,
//! DragonFly); elsewhere (OpenBSD) and under libkqueue (Linux, where `kevent` takes locks and so is
//! not async-signal-safe) the fd waker, registered with EVFILT_READ.
//!
//! On Linux this backend exists only with the `libkqueue` feature, which links libkqueue (kqueue
//! emulated on epoll) so that the backend and the whole C suite run here.

use super::{
    Interest, ModifyError, PollEvent, Poller, Token, WakeTarget, Watch, check_fd_open,
    file_identity,
};
use crate::status::{Error, Result};
use crate::types::{REACTOR_ERROR, REACTOR_HANGUP, REACTOR_READABLE, REACTOR_WRITABLE};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::c_int;

const MAX_EVENTS: usize = 1024;
/// The waker's udata: no registry token has all bits set (index u32::MAX is never allocated).
const WAKER_DATA: u64 = u64::MAX;

const _: () = assert!(
    std::mem::size_of::<usize>() >= std::mem::size_of::<u64>(),
    "a token travels in kevent's udata"
);

/// The kqueue system interface: the platform's own (through `libc`), or libkqueue's on Linux.
#[cfg(not(target_os = "linux"))]
mod sys {
    pub use libc::{
        EV_ADD, EV_DELETE, EV_EOF, EV_ERROR, EVFILT_PROC, EVFILT_READ, EVFILT_SIGNAL, EVFILT_WRITE,
        NOTE_EXIT, kevent, kqueue,
    };
    #[cfg(reactor_kqueue_user)]
    pub use libc::{EV_CLEAR, EVFILT_USER};
}

/// libkqueue 2.6's `<kqueue/sys/event.h>`, declared here (the `libc` crate has no kqueue on Linux).
///
/// cbindgen:ignore
#[cfg(target_os = "linux")]
#[allow(non_camel_case_types)]
mod sys {
    use std::os::raw::{c_int, c_void};

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct kevent {
        pub ident: usize,
        pub filter: i16,
        pub flags: u16,
        pub fflags: u32,
        pub data: isize,
        pub udata: *mut c_void,
    }

    pub const EVFILT_READ: i16 = -1;
    pub const EVFILT_WRITE: i16 = -2;
    pub const EVFILT_PROC: i16 = -5;
    pub const EVFILT_SIGNAL: i16 = -6;
    pub const EV_ADD: u16 = 0x0001;
    pub const EV_DELETE: u16 = 0x0002;
    pub const EV_EOF: u16 = 0x8000;
    pub const EV_ERROR: u16 = 0x4000;
    pub const NOTE_EXIT: u32 = 0x8000_0000;

    #[link(name = "kqueue")]
    unsafe extern "C" {
        pub fn kqueue() -> c_int;
        pub fn kevent(
            kq: c_int,
            changelist: *const kevent,
            nchanges: c_int,
            eventlist: *mut kevent,
            nevents: c_int,
            timeout: *const libc::timespec,
        ) -> c_int;
    }
}

/// One change (or an empty event buffer entry).
#[allow(clippy::unnecessary_cast)] // the field types differ between platforms
fn change(ident: usize, filter: i16, flags: u16, fflags: u32, udata: u64) -> sys::kevent {
    // SAFETY: all-zero is a valid kevent (integers and a null pointer).
    let mut k: sys::kevent = unsafe { std::mem::zeroed() };
    k.ident = ident as _;
    k.filter = filter as _;
    k.flags = flags as _;
    k.fflags = fflags as _;
    k.udata = udata as usize as _;
    k
}

/// The fields of a returned event (copied out by value: macOS's struct is packed).
#[allow(clippy::unnecessary_cast)]
fn fields(k: &sys::kevent) -> (usize, i16, u16, u32, i64, u64) {
    let k = *k;
    (
        k.ident as usize,
        k.filter as i16,
        k.flags as u16,
        k.fflags as u32,
        k.data as i64,
        k.udata as usize as u64,
    )
}

/// Submits `changes` and collects up to `events.len()` events, waiting at most `timeout_ms` (-1:
/// forever). EINTR is not an error (its changes were applied).
fn kevent_call(
    kq: c_int,
    changes: &[sys::kevent],
    events: &mut [sys::kevent],
    timeout_ms: c_int,
) -> std::result::Result<usize, i32> {
    let timeout = (timeout_ms >= 0).then(|| libc::timespec {
        tv_sec: (timeout_ms / 1000) as libc::time_t,
        tv_nsec: ((timeout_ms % 1000) as libc::c_long) * 1_000_000,
    });
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: the change and event buffers are valid for the lengths passed; the timeout is null or
    // a live timespec.
    let n = unsafe {
        sys::kevent(
            kq,
            changes.as_ptr(),
            changes.len() as _,
            events.as_mut_ptr(),
            events.len() as _,
            timeout_ptr,
        )
    };
    if n >= 0 {
        return Ok(n as usize);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EINTR) => Ok(0),
        other => Err(other.unwrap_or(libc::EIO)),
    }
}

pub struct Kqueue {
    kq: OwnedFd,
    /// The fd waker, where EVFILT_USER is not used.
    waker: Option<super::Waker>,
    /// Per fd number: the token and the filters registered (as the kernel will have them once
    /// `changes` are submitted).
    registered: Vec<Option<(Token, Interest)>>,
    /// Per fd number: the identity of the file registered (`file_identity`), to tell a host's fd
    /// closed behind our back and reused from the one registered (a kqueue forgets the filters of a
    /// closed file, so a later modification would reach nothing).
    identities: Vec<(u64, u64)>,
    /// Modifications not yet submitted; they go with the next wait (or the next removal).
    changes: Vec<sys::kevent>,
    events: Vec<sys::kevent>,
    /// libkqueue's own fds (its epoll fd and helpers), which hosts must not register either.
    emulation_fds: Vec<c_int>,
}

/// The process's open fds (libkqueue only: to learn which fds the emulation opened for a kqueue).
/// The listing's own directory fd is left out (it is closed again by the time of the open check, and
/// its number is free for the next fd).
#[cfg(target_os = "linux")]
fn open_fds() -> Vec<c_int> {
    let listed: Vec<c_int> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    listed
        .into_iter()
        .filter(|fd| check_fd_open(*fd).is_ok())
        .collect()
}

// SAFETY: the only non-Send parts are kevent's `udata` pointers, which hold plain token numbers and
// are never dereferenced; the backend is used by one thread at a time (the reactor's owner).
unsafe impl Send for Kqueue {}

impl Kqueue {
    pub fn new() -> Result<Kqueue> {
        #[cfg(target_os = "linux")]
        let before = open_fds();
        // SAFETY: plain call; the result is checked.
        let fd = unsafe { sys::kqueue() };
        if fd < 0 {
            return Err(Error::last_os());
        }
        // SAFETY: a fresh fd we own.
        let kq = unsafe { OwnedFd::from_raw_fd(fd) };
        // kqueue descriptors are not inherited across fork on the BSDs; close-on-exec for the rest.
        // SAFETY: plain fcntl on our own fd.
        unsafe { libc::fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        let mut backend = Kqueue {
            kq,
            waker: None,
            registered: Vec::new(),
            identities: Vec::new(),
            changes: Vec::new(),
            // SAFETY: all-zero kevents are valid empty buffer entries.
            events: vec![unsafe { std::mem::zeroed() }; MAX_EVENTS],
            emulation_fds: Vec::new(),
        };
        backend.install_waker()?;
        // Under libkqueue every fd that appeared while the kqueue and its waker were made is the
        // emulation's (this test-only build assumes no other thread opens fds in that moment).
        #[cfg(target_os = "linux")]
        {
            backend.emulation_fds = open_fds()
                .into_iter()
                .filter(|fd| !before.contains(fd) && !backend.owns_fd(*fd))
                .collect();
        }
        Ok(backend)
    }

    #[cfg(reactor_kqueue_user)]
    fn install_waker(&mut self) -> Result<()> {
        let user = change(
            0,
            sys::EVFILT_USER,
            sys::EV_ADD | sys::EV_CLEAR,
            0,
            WAKER_DATA,
        );
        kevent_call(self.kq.as_raw_fd(), &[user], &mut [], 0).map_err(Error::Os)?;
        Ok(())
    }

    #[cfg(not(reactor_kqueue_user))]
    fn install_waker(&mut self) -> Result<()> {
        let waker = super::Waker::new()?;
        let read = change(
            waker.read_fd() as usize,
            sys::EVFILT_READ,
            sys::EV_ADD,
            0,
            WAKER_DATA,
        );
        kevent_call(self.kq.as_raw_fd(), &[read], &mut [], 0).map_err(Error::Os)?;
        self.waker = Some(waker);
        Ok(())
    }

    fn registration(&self, fd: c_int) -> Option<(Token, Interest)> {
        self.registered.get(fd as usize).copied().flatten()
    }

    /// Queues the filter changes that take `fd` from `old` (registered under `old_token`) to `new`
    /// filters under `token`. A filter that stays, under the same token, is left alone (re-adding it
    /// would only update its udata, and libkqueue reports spurious errors for that).
    fn queue_changes(
        &mut self,
        fd: c_int,
        old_token: Option<Token>,
        token: Token,
        old: Interest,
        new: Interest,
    ) {
        let same_token = old_token == Some(token);
        let wanted = [
            (sys::EVFILT_READ, old.read, new.read),
            (sys::EVFILT_WRITE, old.write, new.write),
        ];
        for (filter, had, wants) in wanted {
            if wants && !(had && same_token) {
                self.changes
                    .push(change(fd as usize, filter, sys::EV_ADD, 0, token.raw()));
            } else if had && !wants {
                self.changes
                    .push(change(fd as usize, filter, sys::EV_DELETE, 0, token.raw()));
            }
        }
    }

    /// Registers `fd` under `token` with `identity` (`file_identity`, or zeros for an owned fd).
    fn register(
        &mut self,
        fd: c_int,
        token: Token,
        interest: Interest,
        identity: (u64, u64),
    ) -> Result<()> {
        let index = usize::try_from(fd).map_err(|_| Error::Invalid)?;
        if let Some((old_token, old)) = self.registration(fd)
            && old_token != token
        {
            // A new registration on an fd number we still hold one for: the old file was closed
            // behind our back and the number reused. The old filters go first, at once (a real
            // kqueue dropped them with the close; libkqueue still has them).
            self.registered[index] = None;
            self.queue_changes(fd, Some(old_token), old_token, old, Interest::default());
            let changes = std::mem::take(&mut self.changes);
            let _ = kevent_call(self.kq.as_raw_fd(), &changes, &mut [], 0);
        }
        let old = self.registration(fd);
        let old_interest = old.map_or(Interest::default(), |(_, i)| i);
        self.queue_changes(fd, old.map(|(t, _)| t), token, old_interest, interest);
        if self.registered.len() <= index {
            self.registered.resize(index + 1, None);
            self.identities.resize(index + 1, (0, 0));
        }
        self.registered[index] = Some((token, interest));
        self.identities[index] = identity;
        Ok(())
    }

    /// Turns `n` returned entries into events (a refused change: its token's registration is stale).
    /// Returns whether the waker fired.
    fn collect(&mut self, n: usize, out: &mut Vec<PollEvent>) -> bool {
        let mut woken = false;
        for i in 0..n {
            let (ident, filter, flags, fflags, data, udata) = fields(&self.events[i]);
            if udata == WAKER_DATA {
                if let Some(waker) = &self.waker {
                    waker.drain();
                }
                woken = true;
                continue;
            }
            let Some(token) = Token::from_raw(udata) else {
                continue;
            };
            if flags & sys::EV_ERROR != 0 {
                // A refused change: only failures that say the file is gone matter (a delete of a
                // filter an fd no longer has is harmless).
                if data != 0 && data as i32 != libc::ENOENT {
                    // Only fd filters have a slot (a watch's ident is a pid or a signal number).
                    let fd_filter = filter == sys::EVFILT_READ || filter == sys::EVFILT_WRITE;
                    if let Some(slot) = self.registered.get_mut(ident).filter(|_| fd_filter) {
                        *slot = None;
                    }
                    let mut event = PollEvent::new(token, REACTOR_ERROR);
                    event.closed = true;
                    out.push(event);
                }
                continue;
            }
            let eof = flags & sys::EV_EOF != 0;
            let bits = if filter == sys::EVFILT_READ {
                REACTOR_READABLE | if eof { REACTOR_HANGUP } else { 0 }
            } else if filter == sys::EVFILT_WRITE {
                REACTOR_WRITABLE | if eof { REACTOR_ERROR } else { 0 }
            } else {
                REACTOR_READABLE // a watch (process exit, signal)
            };
            let mut event = PollEvent::new(
                token,
                bits | if eof && fflags != 0 { REACTOR_ERROR } else { 0 },
            );
            event.eof = eof;
            event.data = if eof && fflags != 0 {
                i64::from(fflags)
            } else {
                data
            };
            out.push(event);
        }
        woken
    }
}

impl Drop for Kqueue {
    /// Registrations go before the kqueue closes: libkqueue keeps per-fd state it frees only on a
    /// delete (a real kqueue frees everything with its descriptor).
    fn drop(&mut self) {
        let mut changes = std::mem::take(&mut self.changes);
        changes.clear();
        for (fd, registration) in self.registered.iter().enumerate() {
            if let Some((token, interest)) = registration {
                if interest.read {
                    changes.push(change(fd, sys::EVFILT_READ, sys::EV_DELETE, 0, token.raw()));
                }
                if interest.write {
                    changes.push(change(
                        fd,
                        sys::EVFILT_WRITE,
                        sys::EV_DELETE,
                        0,
                        token.raw(),
                    ));
                }
            }
        }
        if let Some(waker) = &self.waker {
            changes.push(change(
                waker.read_fd() as usize,
                sys::EVFILT_READ,
                sys::EV_DELETE,
                0,
                WAKER_DATA,
            ));
        }
        // One call per change: a refused one (an fd closed meanwhile) must not stop the others.
        for one in &changes {
            let _ = kevent_call(self.kq.as_raw_fd(), std::slice::from_ref(one), &mut [], 0);
        }
    }
}

impl Poller for Kqueue {
    fn name(&self) -> &'static str {
        "kqueue"
    }

    fn pollable_fd(&self) -> c_int {
        self.kq.as_raw_fd()
    }

    fn wake_target(&self) -> WakeTarget {
        match &self.waker {
            Some(waker) => waker.target(),
            None => WakeTarget::kqueue_user(self.kq.as_raw_fd()),
        }
    }

    fn owns_fd(&self, fd: c_int) -> bool {
        fd == self.kq.as_raw_fd()
            || self.waker.as_ref().is_some_and(|w| w.owns_fd(fd))
            || self.emulation_fds.contains(&fd)
    }

    fn add(&mut self, fd: c_int, token: Token, interest: Interest) -> Result<()> {
        check_fd_open(fd)?;
        let identity = file_identity(fd)?;
        self.register(fd, token, interest, identity)
    }

    /// The library's own sockets: open, never closed behind our back, so no identity to keep.
    fn add_owned(&mut self, fd: c_int, token: Token, interest: Interest) -> Result<()> {
        self.register(fd, token, interest, (0, 0))
    }

    fn modify(
        &mut self,
        fd: c_int,
        token: Token,
        interest: Interest,
    ) -> std::result::Result<(), ModifyError> {
        match file_identity(fd) {
            Ok(identity) if self.identities.get(fd as usize) == Some(&identity) => {}
            Ok(_) | Err(Error::Os(libc::EBADF)) => return Err(ModifyError::Stale),
            Err(e) => return Err(ModifyError::Other(e)),
        }
        self.modify_owned(fd, token, interest)
    }

    fn modify_owned(
        &mut self,
        fd: c_int,
        token: Token,
        interest: Interest,
    ) -> std::result::Result<(), ModifyError> {
        let Some((old_token, old)) = self.registration(fd) else {
            return Err(ModifyError::Stale);
        };
        self.queue_changes(fd, Some(old_token), token, old, interest);
        self.registered[fd as usize] = Some((token, interest));
        Ok(())
    }

    fn remove(&mut self, fd: c_int) -> Result<()> {
        let Some((token, old)) = self.registration(fd) else {
            return Err(Error::NotFound);
        };
        self.registered[fd as usize] = None;
        self.queue_changes(fd, Some(token), token, old, Interest::default());
        // Submitted now: the fd is usually closed right after this.
        let changes = std::mem::take(&mut self.changes);
        // Refusals here (filters of an fd already closed) need no report: the registration is gone.
        kevent_call(self.kq.as_raw_fd(), &changes, &mut [], 0)
            .map(drop)
            .map_err(Error::Os)
    }

    fn add_watch(&mut self, watch: Watch, token: Token) -> Result<()> {
        let k = match watch {
            Watch::Process(pid) => change(
                pid as usize,
                sys::EVFILT_PROC,
                sys::EV_ADD,
                sys::NOTE_EXIT,
                token.raw(),
            ),
            Watch::Signal(signal) => change(
                signal as usize,
                sys::EVFILT_SIGNAL,
                sys::EV_ADD,
                0,
                token.raw(),
            ),
        };
        kevent_call(self.kq.as_raw_fd(), &[k], &mut [], 0)
            .map(drop)
            .map_err(Error::Os)
    }

    fn remove_watch(&mut self, watch: Watch) -> Result<()> {
        let k = match watch {
            Watch::Process(pid) => change(pid as usize, sys::EVFILT_PROC, sys::EV_DELETE, 0, 0),
            Watch::Signal(signal) => {
                change(signal as usize, sys::EVFILT_SIGNAL, sys::EV_DELETE, 0, 0)
            }
        };
        kevent_call(self.kq.as_raw_fd(), &[k], &mut [], 0)
            .map(drop)
            .map_err(Error::Os)
    }

    fn poll(&mut self, out: &mut Vec<PollEvent>, timeout_ms: c_int) -> Result<bool> {
        let changes = std::mem::take(&mut self.changes);
        let result = kevent_call(self.kq.as_raw_fd(), &changes, &mut self.events, timeout_ms);
        // The emptied change buffer keeps its capacity for the next batch.
        let mut changes = changes;
        changes.clear();
        if self.changes.is_empty() {
            self.changes = changes;
        }
        let n = result.map_err(Error::Os)?;
        Ok(self.collect(n, out))
    }
}
