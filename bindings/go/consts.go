package reactor

// Compile-time checks that the literal constants of the public API equal the header's values: each
// line is a zero-length array only when the two agree (a mismatch fails the build).

/*
#include "shim.h"
*/
import "C"

var (
	_ [0]struct{} = [int(BackendDefault) - C.REACTOR_BACKEND_DEFAULT]struct{}{}
	_ [0]struct{} = [C.REACTOR_BACKEND_DEFAULT - int(BackendDefault)]struct{}{}
	_ [0]struct{} = [int(BackendEpoll) - C.REACTOR_BACKEND_EPOLL]struct{}{}
	_ [0]struct{} = [C.REACTOR_BACKEND_EPOLL - int(BackendEpoll)]struct{}{}
	_ [0]struct{} = [int(BackendPoll) - C.REACTOR_BACKEND_POLL]struct{}{}
	_ [0]struct{} = [C.REACTOR_BACKEND_POLL - int(BackendPoll)]struct{}{}
	_ [0]struct{} = [int(BackendKqueue) - C.REACTOR_BACKEND_KQUEUE]struct{}{}
	_ [0]struct{} = [C.REACTOR_BACKEND_KQUEUE - int(BackendKqueue)]struct{}{}
	_ [0]struct{} = [int(LogError) - C.REACTOR_LOG_ERROR]struct{}{}
	_ [0]struct{} = [C.REACTOR_LOG_ERROR - int(LogError)]struct{}{}
	_ [0]struct{} = [int(LogWarn) - C.REACTOR_LOG_WARN]struct{}{}
	_ [0]struct{} = [C.REACTOR_LOG_WARN - int(LogWarn)]struct{}{}
	_ [0]struct{} = [int(LogInfo) - C.REACTOR_LOG_INFO]struct{}{}
	_ [0]struct{} = [C.REACTOR_LOG_INFO - int(LogInfo)]struct{}{}
	_ [0]struct{} = [int(Before) - C.REACTOR_PHASE_BEFORE]struct{}{}
	_ [0]struct{} = [C.REACTOR_PHASE_BEFORE - int(Before)]struct{}{}
	_ [0]struct{} = [int(During) - C.REACTOR_PHASE_DURING]struct{}{}
	_ [0]struct{} = [C.REACTOR_PHASE_DURING - int(During)]struct{}{}
	_ [0]struct{} = [int(After) - C.REACTOR_PHASE_AFTER]struct{}{}
	_ [0]struct{} = [C.REACTOR_PHASE_AFTER - int(After)]struct{}{}
	_ [0]struct{} = [int(Readable) - C.REACTOR_READABLE]struct{}{}
	_ [0]struct{} = [C.REACTOR_READABLE - int(Readable)]struct{}{}
	_ [0]struct{} = [int(Writable) - C.REACTOR_WRITABLE]struct{}{}
	_ [0]struct{} = [C.REACTOR_WRITABLE - int(Writable)]struct{}{}
	_ [0]struct{} = [int(HangUp) - C.REACTOR_HANGUP]struct{}{}
	_ [0]struct{} = [C.REACTOR_HANGUP - int(HangUp)]struct{}{}
	_ [0]struct{} = [int(Failed) - C.REACTOR_ERROR]struct{}{}
	_ [0]struct{} = [C.REACTOR_ERROR - int(Failed)]struct{}{}
	_ [0]struct{} = [int(Shutdown) - C.REACTOR_SHUTDOWN]struct{}{}
	_ [0]struct{} = [C.REACTOR_SHUTDOWN - int(Shutdown)]struct{}{}
	_ [0]struct{} = [statusInvalid - C.REACTOR_E_INVALID]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_INVALID - statusInvalid]struct{}{}
	_ [0]struct{} = [statusWrongThread - C.REACTOR_E_WRONG_THREAD]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_WRONG_THREAD - statusWrongThread]struct{}{}
	_ [0]struct{} = [statusAlreadyRunning - C.REACTOR_E_ALREADY_RUNNING]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_ALREADY_RUNNING - statusAlreadyRunning]struct{}{}
	_ [0]struct{} = [statusNotRunning - C.REACTOR_E_NOT_RUNNING]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_NOT_RUNNING - statusNotRunning]struct{}{}
	_ [0]struct{} = [statusNotRestartable - C.REACTOR_E_NOT_RESTARTABLE]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_NOT_RESTARTABLE - statusNotRestartable]struct{}{}
	_ [0]struct{} = [statusAlreadyCalled - C.REACTOR_E_ALREADY_CALLED]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_ALREADY_CALLED - statusAlreadyCalled]struct{}{}
	_ [0]struct{} = [statusAlreadyCancelled - C.REACTOR_E_ALREADY_CANCELLED]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_ALREADY_CANCELLED - statusAlreadyCancelled]struct{}{}
	_ [0]struct{} = [statusNotFound - C.REACTOR_E_NOT_FOUND]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_NOT_FOUND - statusNotFound]struct{}{}
	_ [0]struct{} = [statusBusy - C.REACTOR_E_BUSY]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_BUSY - statusBusy]struct{}{}
	_ [0]struct{} = [statusClosed - C.REACTOR_E_CLOSED]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_CLOSED - statusClosed]struct{}{}
	_ [0]struct{} = [statusUnsupported - C.REACTOR_E_UNSUPPORTED]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_UNSUPPORTED - statusUnsupported]struct{}{}
	_ [0]struct{} = [statusTimeout - C.REACTOR_E_TIMEOUT]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_TIMEOUT - statusTimeout]struct{}{}
	_ [0]struct{} = [statusNomem - C.REACTOR_E_NOMEM]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_NOMEM - statusNomem]struct{}{}
	_ [0]struct{} = [statusConnectionRefused - C.REACTOR_E_CONNECTION_REFUSED]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_CONNECTION_REFUSED - statusConnectionRefused]struct{}{}
	_ [0]struct{} = [statusDns - C.REACTOR_E_DNS]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_DNS - statusDns]struct{}{}
	_ [0]struct{} = [statusAddressInUse - C.REACTOR_E_ADDRESS_IN_USE]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_ADDRESS_IN_USE - statusAddressInUse]struct{}{}
	_ [0]struct{} = [statusInvalidAddress - C.REACTOR_E_INVALID_ADDRESS]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_INVALID_ADDRESS - statusInvalidAddress]struct{}{}
	_ [0]struct{} = [statusMessageTooLong - C.REACTOR_E_MESSAGE_TOO_LONG]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_MESSAGE_TOO_LONG - statusMessageTooLong]struct{}{}
	_ [0]struct{} = [statusProcessExited - C.REACTOR_E_PROCESS_EXITED]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_PROCESS_EXITED - statusProcessExited]struct{}{}
	_ [0]struct{} = [statusInternal - C.REACTOR_E_INTERNAL]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_INTERNAL - statusInternal]struct{}{}
	_ [0]struct{} = [statusConnectionLost - C.REACTOR_E_CONNECTION_LOST]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_CONNECTION_LOST - statusConnectionLost]struct{}{}
	_ [0]struct{} = [statusConnectionAborted - C.REACTOR_E_CONNECTION_ABORTED]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_CONNECTION_ABORTED - statusConnectionAborted]struct{}{}
	_ [0]struct{} = [statusCancelled - C.REACTOR_E_CANCELLED]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_CANCELLED - statusCancelled]struct{}{}
	_ [0]struct{} = [statusProcessTerminated - C.REACTOR_E_PROCESS_TERMINATED]struct{}{}
	_ [0]struct{} = [C.REACTOR_E_PROCESS_TERMINATED - statusProcessTerminated]struct{}{}
)
