// Where Corral keeps things, following the XDG base directory spec.
// Thread-safety: reads the environment; call from any thread after start-up.
#pragma once

#include <string>

namespace corral {

std::string ConfigDir();   // $XDG_CONFIG_HOME/corral   (config.yaml)
std::string StateDir();    // $XDG_STATE_HOME/corral    (state, logs)
std::string DataDir();     // $XDG_DATA_HOME/corral     (models/ is the user's model directory)
std::string CacheDir();    // $CORRAL_CACHE_DIR or $XDG_CACHE_HOME/corral (engine builds, catalog cache)
std::string RuntimeDir();  // $XDG_RUNTIME_DIR/corral or /tmp/corral-$UID (control socket)

std::string DefaultModelDir();    // DataDir()/models
std::string DefaultConfigFile();  // ConfigDir()/config.yaml

}  // namespace corral
