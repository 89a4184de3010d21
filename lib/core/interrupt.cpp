#include "core/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace vitlab {

namespace {

// Lock-free, so the handler may store it whichever thread the signal lands on (Gloo, OpenMP).
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);
char g_message[256] = "";  // filled before the handlers exist: the handler only reads it

// Async-signal-safe: an atomic store and write(2) of prepared text.
void on_stop_signal(int sig) {
  g_stop_signal = sig;
  const char* name = sig == SIGINT ? "\nvitlab: interrupted (SIGINT): " : "\nvitlab: terminated (SIGTERM): ";
  ssize_t ignored = ::write(STDERR_FILENO, name, std::strlen(name));
  ignored = ::write(STDERR_FILENO, g_message, std::strlen(g_message));
  (void)ignored;
}

}  // namespace

void install_stop_handlers(const char* what) {
  std::strncpy(g_message, what, sizeof g_message - 40);
  std::strcat(g_message, "; send it again to quit at once\n");
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  // SA_RESETHAND: the second signal takes the default action. SA_RESTART: reads and writes in
  // progress (files, Gloo's sockets) carry on instead of failing with EINTR; the training and
  // sweep loops look at stop_signal() between steps.
  action.sa_flags = SA_RESETHAND | SA_RESTART;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

int stop_signal() { return g_stop_signal; }

int stopped_exit_status(int signal) { return 128 + signal; }

}  // namespace vitlab
