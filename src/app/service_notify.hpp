// Readiness and state notifications to the service manager (systemd's sd_notify protocol),
// for a unit with Type=notify (packaging/harbormq.service).
//
// Every function is a no-op when NOTIFY_SOCKET is unset, i.e. whenever the broker is not
// started by systemd (a terminal, a container, the tests), and never fails: a message that
// cannot be sent is dropped, the broker keeps running.
//
// Threads: any thread may call them (each call sends one datagram on its own socket and touches
// no broker state), but the broker calls them from its main thread, the one that runs
// `harbormq start` and takes the signals, so that the messages keep their order. systemd only
// accepts them from the service's main process (NotifyAccess=main), which is this one, whatever
// the thread.
//
// Sequence the service manager expects:
//   start:   listeners open, store restored       -> notify_ready("...")
//   reload:  SIGHUP received                      -> notify_reloading()
//            file re-read (valid or not)          -> notify_ready("...")   (the caller must
//            send READY=1 again after every reload, or systemd reports the reload as hung)
//   stop:    SIGTERM/SIGINT received              -> notify_stopping()
//   any time: notify_status("...") for the one-line status `systemctl status` shows.
#pragma once

#include <string_view>

namespace harbor::app {

// READY=1 with STATUS=<status>: startup (or a reload) is complete. Newlines in status are
// sent as spaces.
void notify_ready(std::string_view status);

// RELOADING=1 (with the MONOTONIC_USEC= newer systemd wants): a reload has begun. Must be
// followed by notify_ready() once the reload is done, whether it succeeded or not.
void notify_reloading();

// STATUS=<status> alone: free-form text for `systemctl status`.
void notify_status(std::string_view status);

// STOPPING=1: shutdown has begun (clients are being disconnected, the store drained).
void notify_stopping();

}  // namespace harbor::app
