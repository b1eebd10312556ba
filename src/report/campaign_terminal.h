// A stored campaign for a terminal, as `memdet report` prints it: where it
// came from, for isolate a factor table in 80 columns, the outcomes'
// differences, and the verdict paragraph as the campaign printed it.
#pragma once

#include <string>

#include "report/campaign_view.h"

namespace memdet::report {

std::string render_campaign_terminal(const CampaignView& view);

}  // namespace memdet::report
