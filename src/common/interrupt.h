// A process-wide "stop what you are doing" flag, set by SIGINT/SIGTERM for long CLI
// operations (model synth, bench). Code checks Interrupted() between units of work and
// cleans up (AtomicFile removes its temporary file) instead of dying mid-write.
// Thread-safety: lock-free; the flag is a std::atomic<bool>.
#pragma once

namespace corral {

// Installs handlers for SIGINT and SIGTERM that set the flag. A second signal restores
// the default action, so a stuck process can still be killed with a second Ctrl+C.
void InstallInterruptHandlers();
bool Interrupted();
void ResetInterruptedForTest();

}  // namespace corral
