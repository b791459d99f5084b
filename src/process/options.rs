//! The checks of `reactor_spawn_process`'s arguments (API.md §8.1, §8.6) and the request they make.

use super::spawn::{ChildFd, Request};
use super::sys;
use crate::status::{Error, Result};
use crate::types::{
    REACTOR_CHILD_FD_INHERIT, REACTOR_CHILD_FD_READ, REACTOR_CHILD_FD_WRITE, reactor_child_fd_t,
};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

/// The arguments as copied from C (strings and arrays already read).
pub struct SpawnArgs {
    pub executable: CString,
    pub argv: Vec<CString>,
    /// `None`: no explicit list.
    pub env: Option<Vec<CString>>,
    pub inherit_env: bool,
    pub cwd: Option<CString>,
    pub uid: i64,
    pub gid: i64,
    /// `None`: the default map.
    pub child_fds: Option<Vec<reactor_child_fd_t>>,
    pub use_pty: bool,
}

/// The default child-fd map: {0: WRITE, 1: READ, 2: READ} (Twisted's).
fn default_map() -> Vec<reactor_child_fd_t> {
    [
        (0, REACTOR_CHILD_FD_WRITE),
        (1, REACTOR_CHILD_FD_READ),
        (2, REACTOR_CHILD_FD_READ),
    ]
    .into_iter()
    .map(|(child_fd, kind)| reactor_child_fd_t {
        child_fd,
        kind,
        parent_fd: -1,
    })
    .collect()
}

/// A uid or gid: -1 = unchanged, else 0..=2^32-2 (2^32-1 is the kernel's "no change").
fn id(value: i64) -> Result<Option<u32>> {
    match value {
        -1 => Ok(None),
        0..=0xffff_fffe => Ok(Some(value as u32)),
        _ => Err(Error::Invalid),
    }
}

/// Checks a child-fd map: child fds non-negative and unique, known kinds, inherited fds open.
fn check_map(map: &[reactor_child_fd_t]) -> Result<Vec<ChildFd>> {
    let mut seen = Vec::with_capacity(map.len());
    for entry in map {
        if entry.child_fd < 0 || seen.contains(&entry.child_fd) {
            return Err(Error::Invalid);
        }
        seen.push(entry.child_fd);
        match entry.kind {
            REACTOR_CHILD_FD_READ | REACTOR_CHILD_FD_WRITE => {}
            REACTOR_CHILD_FD_INHERIT if sys::is_open(entry.parent_fd) => {}
            _ => return Err(Error::Invalid),
        }
    }
    Ok(map
        .iter()
        .map(|e| ChildFd {
            child_fd: e.child_fd,
            kind: e.kind,
            parent_fd: e.parent_fd,
        })
        .collect())
}

/// The parent's environment, as "NAME=value" strings.
fn parent_environment() -> Vec<CString> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let mut entry = name.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            CString::new(entry).ok()
        })
        .collect()
}

/// Checks the arguments and finds the program. Errors: `Error::Invalid` for bad arguments,
/// `Error::Os(errno)` when no executable program is found.
pub fn request(args: SpawnArgs) -> Result<Request> {
    if args.inherit_env && args.env.is_some() {
        return Err(Error::Invalid);
    }
    if args.use_pty && args.child_fds.is_some() {
        return Err(Error::Invalid);
    }
    if let Some(env) = &args.env
        && env.iter().any(|e| !e.as_bytes().contains(&b'='))
    {
        return Err(Error::Invalid);
    }
    let uid = id(args.uid)?;
    let gid = id(args.gid)?;
    let fds = if args.use_pty {
        Vec::new()
    } else {
        check_map(&args.child_fds.unwrap_or_else(default_map))?
    };
    let program =
        sys::find_program(args.executable.as_bytes(), args.cwd.is_some()).map_err(Error::Os)?;
    let env = if args.inherit_env {
        parent_environment()
    } else {
        args.env.unwrap_or_default()
    };
    Ok(Request {
        program,
        argv: args.argv,
        env,
        cwd: args.cwd,
        uid,
        gid,
        fds,
        pty: args.use_pty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SpawnArgs {
        SpawnArgs {
            executable: c"true".into(),
            argv: vec![c"true".into()],
            env: None,
            inherit_env: false,
            cwd: None,
            uid: -1,
            gid: -1,
            child_fds: None,
            use_pty: false,
        }
    }

    fn entry(child_fd: i32, kind: i32, parent_fd: i32) -> reactor_child_fd_t {
        reactor_child_fd_t {
            child_fd,
            kind,
            parent_fd,
        }
    }

    #[test]
    fn the_default_map_is_twisteds() {
        let request = request(args()).unwrap();
        let map: Vec<(i32, i32)> = request.fds.iter().map(|f| (f.child_fd, f.kind)).collect();
        assert_eq!(
            map,
            vec![
                (0, REACTOR_CHILD_FD_WRITE),
                (1, REACTOR_CHILD_FD_READ),
                (2, REACTOR_CHILD_FD_READ)
            ]
        );
        assert!(request.program.as_bytes().ends_with(b"/true"));
        assert!(request.env.is_empty());
    }

    #[test]
    fn bad_maps_and_ids_are_invalid() {
        for map in [
            vec![entry(-1, REACTOR_CHILD_FD_READ, -1)],
            vec![
                entry(3, REACTOR_CHILD_FD_READ, -1),
                entry(3, REACTOR_CHILD_FD_WRITE, -1),
            ],
            vec![entry(0, 9, -1)],
            vec![entry(0, REACTOR_CHILD_FD_INHERIT, 987_654)],
        ] {
            let mut a = args();
            a.child_fds = Some(map);
            assert!(matches!(request(a), Err(Error::Invalid)));
        }
        for (uid, gid) in [(-2, -1), (-1, 0x1_0000_0000), (0xffff_ffff, -1)] {
            let mut a = args();
            a.uid = uid;
            a.gid = gid;
            assert!(matches!(request(a), Err(Error::Invalid)));
        }
        let mut a = args();
        a.use_pty = true;
        a.child_fds = Some(vec![]);
        assert!(matches!(request(a), Err(Error::Invalid)));
        let mut a = args();
        a.inherit_env = true;
        a.env = Some(vec![]);
        assert!(matches!(request(a), Err(Error::Invalid)));
    }

    #[test]
    fn a_missing_program_is_enoent() {
        let mut a = args();
        a.executable = c"no-such-program-libreactor".into();
        assert!(matches!(request(a), Err(Error::Os(libc::ENOENT))));
        let mut a = args();
        a.executable = c"/".into();
        assert!(matches!(request(a), Err(Error::Os(libc::EACCES))));
    }
}
