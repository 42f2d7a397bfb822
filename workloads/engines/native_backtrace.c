/* The C-level stack of a process that dies of a fatal signal, for d29.e3's child processes (workloads/engines/
 * aot_hold.py loads this with LD_PRELOAD). On SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT it prints the native frames
 * (library + offset, and the symbol where the library exports one) to stderr, then dies of the same signal.
 * Python's faulthandler, enabled after this library's constructor ran, handles the signal first: it prints the Python
 * stack, puts this handler back and raises the signal again, so both stacks reach stderr, Python's first.
 * Build: cc -shared -fPIC -O1 -o libailab_backtrace.so native_backtrace.c
 */
#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void on_fatal(int sig) {
  static const char head[] = "\nNative stack (ailab native_backtrace, innermost first):\n";
  void* frames[64];
  int n;
  if (write(STDERR_FILENO, head, sizeof head - 1) < 0) {
    /* nothing to do: stderr is gone */
  }
  n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, STDERR_FILENO); /* writes directly, no malloc */
  signal(sig, SIG_DFL);
  raise(sig);
}

__attribute__((constructor)) static void install(void) {
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
  void* warm[1];
  struct sigaction sa;
  unsigned i;
  backtrace(warm, 1); /* loads the unwinder now, not inside the handler (it may allocate on first use) */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_NODEFER | SA_RESETHAND;
  for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    sigaction(sigs[i], &sa, NULL);
  }
}
