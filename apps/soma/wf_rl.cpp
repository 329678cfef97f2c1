// Workflows: reinforcement-learning recipes (issue 7).
#include "workflows.h"

namespace soma::app {

void add_rl_workflows(std::vector<Workflow>& out) { (void)out; }

}  // namespace soma::app
