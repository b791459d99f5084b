package reactor

/*
#cgo pkg-config: reactor
#include <reactor.h>
*/
import "C"

import (
	"fmt"
	"syscall"
)

// Error is a libreactor status code returned by a failed call. Compare with errors.Is against the
// Err* sentinels (the operation name is ignored by the comparison); OS errors also match their
// syscall.Errno (errors.Is(err, syscall.EBADF)).
type Error struct {
	Status int    // the negative REACTOR_E_* status code (or REACTOR_E_OS(errno))
	Op     string // the binding method that failed ("" for the sentinels)
}

// Sentinel errors, one per libreactor status code. Use errors.Is(err, reactor.ErrNotRunning).
var (
	ErrInvalid           = &Error{Status: int(C.REACTOR_E_INVALID)}
	ErrWrongThread       = &Error{Status: int(C.REACTOR_E_WRONG_THREAD)}
	ErrAlreadyRunning    = &Error{Status: int(C.REACTOR_E_ALREADY_RUNNING)}
	ErrNotRunning        = &Error{Status: int(C.REACTOR_E_NOT_RUNNING)}
	ErrNotRestartable    = &Error{Status: int(C.REACTOR_E_NOT_RESTARTABLE)}
	ErrAlreadyCalled     = &Error{Status: int(C.REACTOR_E_ALREADY_CALLED)}
	ErrAlreadyCancelled  = &Error{Status: int(C.REACTOR_E_ALREADY_CANCELLED)}
	ErrNotFound          = &Error{Status: int(C.REACTOR_E_NOT_FOUND)}
	ErrBusy              = &Error{Status: int(C.REACTOR_E_BUSY)}
	ErrClosed            = &Error{Status: int(C.REACTOR_E_CLOSED)}
	ErrUnsupported       = &Error{Status: int(C.REACTOR_E_UNSUPPORTED)}
	ErrTimeout           = &Error{Status: int(C.REACTOR_E_TIMEOUT)}
	ErrNoMem             = &Error{Status: int(C.REACTOR_E_NOMEM)}
	ErrConnectionRefused = &Error{Status: int(C.REACTOR_E_CONNECTION_REFUSED)}
	ErrDNS               = &Error{Status: int(C.REACTOR_E_DNS)}
	ErrAddressInUse      = &Error{Status: int(C.REACTOR_E_ADDRESS_IN_USE)}
	ErrInvalidAddress    = &Error{Status: int(C.REACTOR_E_INVALID_ADDRESS)}
	ErrMessageTooLong    = &Error{Status: int(C.REACTOR_E_MESSAGE_TOO_LONG)}
	ErrProcessExited     = &Error{Status: int(C.REACTOR_E_PROCESS_EXITED)}
	ErrInternal          = &Error{Status: int(C.REACTOR_E_INTERNAL)}
)

// Error returns "reactor: <op>: <reactor_strerror text>".
func (e *Error) Error() string {
	text := C.GoString(C.reactor_strerror(C.int(e.Status)))
	if e.Op == "" {
		return "reactor: " + text
	}
	return "reactor: " + e.Op + ": " + text
}

// Is reports whether target is an *Error with the same status code (errors.Is support).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status
}

// Unwrap returns the syscall.Errno of an OS error status, so errors.Is(err, syscall.EBADF) works.
func (e *Error) Unwrap() error {
	if n := e.Errno(); n != 0 {
		return n
	}
	return nil
}

// Errno returns the errno inside a REACTOR_E_OS(errno) status, or 0.
func (e *Error) Errno() syscall.Errno {
	return syscall.Errno(C.reactor_status_errno(C.int(e.Status)))
}

// StatusText returns reactor_strerror(status): the library's description of any status code.
func StatusText(status int) string {
	return C.GoString(C.reactor_strerror(C.int(status)))
}

// statusErr maps a C status to nil or an *Error naming op.
func statusErr(op string, rc C.int) error {
	if rc == C.REACTOR_OK {
		return nil
	}
	return &Error{Status: int(rc), Op: op}
}

// PanicError is what the error handler receives when a Go callback panicked inside a library
// callback. The panic was recovered in the callback's trampoline (it never unwinds through the
// library) and the reactor keeps running.
type PanicError struct {
	Where string // which kind of callback: "callback", "fd", "trigger", "work", "done", "log"
	Value any    // the value passed to panic
	Stack []byte // the panicking goroutine's stack
}

func (p *PanicError) Error() string {
	return fmt.Sprintf("reactor: panic in %s callback: %v", p.Where, p.Value)
}

// Unwrap returns the panic value when it is an error.
func (p *PanicError) Unwrap() error {
	if err, ok := p.Value.(error); ok {
		return err
	}
	return nil
}

// TriggerError is what the error handler receives when a system event trigger returned an error.
type TriggerError struct {
	Event string
	Phase Phase
	ID    TriggerID
	Err   error
}

func (t *TriggerError) Error() string {
	return fmt.Sprintf("reactor: %s trigger %d of event %q failed: %v", t.Phase, t.ID, t.Event, t.Err)
}

func (t *TriggerError) Unwrap() error { return t.Err }
