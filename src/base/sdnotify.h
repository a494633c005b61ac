/*
 * sdnotify.h - telling the service manager about our state (sd_notify(3)):
 * one datagram of "KEY=VALUE" lines to $NOTIFY_SOCKET, written by hand (the
 * protocol is stable and tiny; no libsystemd). Without $NOTIFY_SOCKET (not
 * run by systemd with Type=notify) every call does nothing.
 */
#ifndef ORCH_BASE_SDNOTIFY_H
#define ORCH_BASE_SDNOTIFY_H

#include <stdint.h>

/* Read $NOTIFY_SOCKET and $WATCHDOG_USEC (and $WATCHDOG_PID) and remove
 * them from the environment, so that task processes do not inherit them.
 * Call once, before any thread starts. Returns 1 if notifications go
 * somewhere, else 0. */
int sdnotify_init(void);

/* Send `state` ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...", lines
 * separated by '\n'). Thread-safe. Returns 0, or -1 if it could not be sent
 * (or there is no socket). */
int sdnotify_send(const char *state);

/* The watchdog interval the service manager asked for (WatchdogSec=), in
 * milliseconds, or 0 if none: send "WATCHDOG=1" at half of it. */
int64_t sdnotify_watchdog_ms(void);

#endif
