/* The C ABI of libreactor; the include directory comes from `pkg-config --cflags reactor`. */
#ifndef REACTOR_SWIFT_SHIM_H
#define REACTOR_SWIFT_SHIM_H
#include <reactor.h>
#endif
