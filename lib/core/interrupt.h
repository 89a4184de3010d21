// Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next safe point rather than at once:
// `vitlab train` finishes its current step and writes a checkpoint it can resume from, and
// `vitlab sweep` stops its runs that way and starts no more. A second signal of the same kind
// ends the process the usual way (the handler is installed with SA_RESETHAND): a user who must
// quit at once still can, and nothing half-written is taken for a result (core/atomic_file.h).
#pragma once

namespace vitlab {

// Installs the handlers for SIGINT and SIGTERM; `what` says in one phrase what the program will
// do, e.g. "stopping after the current step" (the handler prints it with the signal's name).
void install_stop_handlers(const char* what);

// 0 while no stop was asked for; else the signal that asked (SIGINT or SIGTERM).
int stop_signal();

// The exit status of a program stopped by `signal`, as shells report it: 128 + signal.
int stopped_exit_status(int signal);

}  // namespace vitlab
