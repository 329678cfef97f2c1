// Workflows: character language model and text classification recipes (issue 5).
#include "workflows.h"

namespace soma::app {

void add_text_workflows(std::vector<Workflow>& out) { (void)out; }

}  // namespace soma::app
