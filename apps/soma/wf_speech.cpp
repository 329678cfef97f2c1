// Workflows: spoken-digit recognition recipe (issue 5).
#include "workflows.h"

namespace soma::app {

void add_speech_workflows(std::vector<Workflow>& out) { (void)out; }

}  // namespace soma::app
