// SPDX-License-Identifier: MIT
// The progress of a long command (import, export, outbox drain) on stderr: one line,
// rewritten in place, with a count and a rate; nothing at all when stderr is not a
// terminal (a pipe, a file, a service's journal), so scripts and logs see only results.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <modelrepo/progress.hpp>

namespace modelrepo::cli {

/// Not thread-safe: one per command, told from one thread at a time.
class ProgressLine {
public:
    /// `what`: the command, first on the line ("import"). Shown only when stderr is a
    /// terminal (the tests give it one: a pty).
    explicit ProgressLine(std::string what);
    ~ProgressLine();
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;

    bool shown() const { return shown_; }
    /// The line for `p`: drawn at most ten times a second, and always at a step's end (a
    /// new step, `done` reaching `total`, finish()). The rate is the step's: its count over
    /// the time since the step before it was last told.
    void tell(const Progress& p);
    /// A ProgressFn that tells this line (empty when the line is not shown: no cost).
    ProgressFn fn();
    /// Ends the line (a newline), when anything was shown.
    void finish();

private:
    using Clock = std::chrono::steady_clock;
    /// Draws the step's latest count when not yet drawn; `end_line` ends the line.
    void draw(bool end_line);

    std::string what_;
    std::FILE* out_;
    bool shown_;
    bool open_ = false;    ///< a line is on the terminal, not yet ended
    bool undrawn_ = false; ///< told since last drawn
    std::string step_;
    std::int64_t done_ = 0, total_ = -1;
    Clock::time_point step_started_, last_told_, last_drawn_{};
};

/// "12,345": a count with thousands separated, as a person reads it.
std::string grouped(std::int64_t n);

} // namespace modelrepo::cli
