#include "cli/exit_codes.h"

namespace corral::cli {

ExitCode ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return ExitCode::kOk;
    case StatusCode::kInvalidArgument: return ExitCode::kUsage;
    case StatusCode::kAmbiguous: return ExitCode::kModelReference;
    default: return ExitCode::kOther;
  }
}

}  // namespace corral::cli
