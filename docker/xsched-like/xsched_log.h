// XSched's log line format, as the real 1.2 build prints it on stderr (XSCHED-FACTS.md section 1):
//   [XSCHED <LEVEL> @ T <tid> @ <HH:MM:SS.us>] <text>
// with the levels INFO, WARN, ERRO, DEBG. xsched-ops parses these lines (the xserver's log is the
// scheduler's own evidence), so the stand-in prints exactly this shape.
#pragma once

#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace xsched_like {

inline void Log(const char *source, const char *level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

// source: "XSCHED" for XSched's own lines, "IPC" for its IPC library's (which writes "T<tid>").
inline void Log(const char *source, const char *level, const char *format, ...) {
    timeval now{};
    gettimeofday(&now, nullptr);
    tm local{};
    localtime_r(&now.tv_sec, &local);
    char text[2048];
    va_list arguments;
    va_start(arguments, format);
    std::vsnprintf(text, sizeof(text), format, arguments);
    va_end(arguments);
    const long tid = syscall(SYS_gettid);
    const bool xsched = source[0] == 'X';
    std::fprintf(stderr, "[%s %s @ T%s%ld @ %02d:%02d:%02d.%06ld] %s\n", source, level, xsched ? " " : "", tid,
                 local.tm_hour, local.tm_min, local.tm_sec, static_cast<long>(now.tv_usec), text);
    std::fflush(stderr);
}

}  // namespace xsched_like
