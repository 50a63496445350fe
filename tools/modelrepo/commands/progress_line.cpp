// SPDX-License-Identifier: MIT
#include "progress_line.hpp"

#include <cmath>

#include <unistd.h>

namespace modelrepo::cli {

std::string grouped(std::int64_t n) {
    std::string digits = std::to_string(n < 0 ? -n : n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return n < 0 ? "-" + out : out;
}

ProgressLine::ProgressLine(std::string what)
    : what_(std::move(what))
    , out_(stderr)
    , shown_(::isatty(::fileno(out_)) == 1)
    , step_started_(Clock::now())
    , last_told_(step_started_) {}

ProgressLine::~ProgressLine() {
    finish();
}

ProgressFn ProgressLine::fn() {
    if (!shown_)
        return {};
    return [this](const Progress& p) { tell(p); };
}

void ProgressLine::tell(const Progress& p) {
    if (!shown_)
        return;
    const auto now = Clock::now();
    if (p.step != step_) {
        // A step began when the one before it was last told (or the command began): an
        // import's statements are told once each, when done.
        if (open_)
            draw(true);
        step_ = std::string(p.step);
        step_started_ = last_told_;
    }
    done_ = p.done;
    total_ = p.total;
    last_told_ = now;
    const bool last = total_ >= 0 && done_ >= total_;
    undrawn_ = true;
    if (last || now - last_drawn_ >= std::chrono::milliseconds(100))
        draw(false);
}

void ProgressLine::draw(bool end_line) {
    if (undrawn_) {
        const double seconds = std::chrono::duration<double>(last_told_ - step_started_).count();
        std::string line = what_ + ": " + grouped(done_);
        if (total_ >= 0)
            line += "/" + grouped(total_);
        line += " " + step_;
        if (seconds >= 0.001 && done_ > 0)
            line += " (" + grouped(std::llround(static_cast<double>(done_) / seconds)) + "/s)";
        // \r and erase-to-end: the line is rewritten in place until its step ends.
        std::fprintf(out_, "\r%s\x1b[K", line.c_str());
        open_ = true;
        undrawn_ = false;
        last_drawn_ = Clock::now();
    }
    if (end_line && open_) {
        std::fputc('\n', out_);
        open_ = false;
    }
    std::fflush(out_);
}

void ProgressLine::finish() {
    if (open_ || undrawn_)
        draw(true);
}

} // namespace modelrepo::cli
