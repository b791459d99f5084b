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

// Status codes (REACTOR_E_*), checked against reactor.h at compile time (consts.go).
const (
	statusInvalid           = -1
	statusWrongThread       = -2
	statusAlreadyRunning    = -3
	statusNotRunning        = -4
	statusNotRestartable    = -5
	statusAlreadyCalled     = -6
	statusAlreadyCancelled  = -7
	statusNotFound          = -8
	statusBusy              = -9
	statusClosed            = -10
	statusUnsupported       = -11
	statusTimeout           = -12
	statusNomem             = -13
	statusConnectionRefused = -14
	statusDns               = -15
	statusAddressInUse      = -16
	statusInvalidAddress    = -17
	statusMessageTooLong    = -18
	statusProcessExited     = -19
	statusInternal          = -20
	statusConnectionLost    = -21
	statusConnectionAborted = -22
	statusCancelled         = -23
	statusProcessTerminated = -24
)

// Sentinel errors, one per libreactor status code. Use errors.Is(err, reactor.ErrNotRunning).
var (
	ErrInvalid           = &Error{Status: statusInvalid}
	ErrWrongThread       = &Error{Status: statusWrongThread}
	ErrAlreadyRunning    = &Error{Status: statusAlreadyRunning}
	ErrNotRunning        = &Error{Status: statusNotRunning}
	ErrNotRestartable    = &Error{Status: statusNotRestartable}
	ErrAlreadyCalled     = &Error{Status: statusAlreadyCalled}
	ErrAlreadyCancelled  = &Error{Status: statusAlreadyCancelled}
	ErrNotFound          = &Error{Status: statusNotFound}
	ErrBusy              = &Error{Status: statusBusy}
	ErrClosed            = &Error{Status: statusClosed}
	ErrUnsupported       = &Error{Status: statusUnsupported}
	ErrTimeout           = &Error{Status: statusTimeout}
	ErrNoMem             = &Error{Status: statusNomem}
	ErrConnectionRefused = &Error{Status: statusConnectionRefused}
	ErrDNS               = &Error{Status: statusDns}
	ErrAddressInUse      = &Error{Status: statusAddressInUse}
	ErrInvalidAddress    = &Error{Status: statusInvalidAddress}
	ErrMessageTooLong    = &Error{Status: statusMessageTooLong}
	ErrProcessExited     = &Error{Status: statusProcessExited}
	ErrInternal          = &Error{Status: statusInternal}
	ErrConnectionLost    = &Error{Status: statusConnectionLost}
	ErrConnectionAborted = &Error{Status: statusConnectionAborted}
	ErrCancelled         = &Error{Status: statusCancelled}
	ErrProcessTerminated = &Error{Status: statusProcessTerminated}
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
