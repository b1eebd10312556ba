// A campaign as one self-contained HTML page: the verdict, the factor or
// run table, the runs' loss curves as inline SVG with the first divergent
// step marked, and how the counters varied. Nothing on the page is fetched:
// no script, no external style sheet, image or font, so it opens the same
// offline, from a mail attachment or an archived CI job.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "report/campaign_view.h"

namespace memdet::report {

// `text` safe inside an element or a quoted attribute: & < > " ' become
// entities, and control characters other than tab and line break are shown
// as \xNN, which HTML does not allow as they are.
std::string html_escape(std::string_view text);

std::string render_html(const CampaignView& view);

// Writes the page to `path`. Fails with the path and the reason.
Status write_html(const CampaignView& view, const std::string& path);

}  // namespace memdet::report
