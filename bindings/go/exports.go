package reactor

// The //export trampolines the library calls. This file's preamble holds declarations only: cgo copies
// it into _cgo_export.h, which is compiled more than once. Every trampoline recovers Go panics (a Go
// panic unwinding through the library's Rust frames is undefined behaviour and once left a lock held)
// and reports them through the owning reactor's or pool's error handler.

/*
#include <stdint.h>
#include <reactor.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export goReactorRelease
func goReactorRelease(ud unsafe.Pointer) {
	defer strayPanic("release")
	dropHandle(cgo.Handle(uintptr(ud)))
}

//export goReactorCallback
func goReactorCallback(_ *C.reactor_t, ud unsafe.Pointer) {
	defer strayPanic("callback")
	cb := cgo.Handle(uintptr(ud)).Value().(*callback)
	defer cb.sink.catch("callback")
	cb.fn()
}

//export goReactorTimer
func goReactorTimer(_ *C.reactor_t, ud unsafe.Pointer) {
	defer strayPanic("timer")
	t := cgo.Handle(uintptr(ud)).Value().(*timerCallback)
	t.dc.state = dcCalled // before fn: inside its own callback the call is no longer active
	defer t.sink.catch("callback")
	t.fn()
}

// goReactorTimerRelease is the release hook of a delayed call: it runs once, after the call ran, when
// it was cancelled, or inside reactor_free; it releases the C delayed-call handle too.
//
//export goReactorTimerRelease
func goReactorTimerRelease(ud unsafe.Pointer) {
	defer strayPanic("release")
	h := cgo.Handle(uintptr(ud))
	h.Value().(*timerCallback).dc.finish()
	dropHandle(h)
}

//export goReactorFd
func goReactorFd(_ *C.reactor_t, fd C.int, events C.uint32_t, ud unsafe.Pointer) {
	defer strayPanic("fd")
	cb := cgo.Handle(uintptr(ud)).Value().(*fdCallback)
	defer cb.sink.catch("fd")
	cb.fn(int(fd), Events(events))
}

//export goReactorTrigger
func goReactorTrigger(_ *C.reactor_t, id C.uint64_t, ud unsafe.Pointer) (status C.int) {
	defer strayPanic("trigger")
	t := cgo.Handle(uintptr(ud)).Value().(*trigger)
	return t.fire(TriggerID(id))
}

//export goReactorLog
func goReactorLog(ud unsafe.Pointer, level C.int, msg *C.char) {
	defer strayPanic("log")
	s := cgo.Handle(uintptr(ud)).Value().(*errorSink)
	defer s.catch("log")
	if s.logger != nil {
		s.logger(LogLevel(level), C.GoString(msg))
	}
}

//export goReactorWork
func goReactorWork(ud unsafe.Pointer) {
	defer strayPanic("work")
	cb := cgo.Handle(uintptr(ud)).Value().(*callback)
	defer cb.sink.catch("work")
	cb.fn()
}

//export goReactorWorkResult
func goReactorWorkResult(ud unsafe.Pointer) {
	defer strayPanic("work")
	cgo.Handle(uintptr(ud)).Value().(*resultJob).runWork()
}

//export goReactorDone
func goReactorDone(_ *C.reactor_t, ud unsafe.Pointer) {
	defer strayPanic("done")
	cgo.Handle(uintptr(ud)).Value().(*resultJob).runDone()
}
