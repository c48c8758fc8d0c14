"""The script that finds a command's processes inside a container by their marker variable."""

# Finds every process whose initial environment carries the marker; lists it ("list") or signals
# it. Fixed text: the values travel as arguments. It runs with the container's default
# environment, so it never matches itself.
MARKED_SCRIPT = r"""
action="$1"; marker="$2"
for dir in /proc/[0-9]*; do
  pid="${dir#/proc/}"
  [ "$pid" = "$$" ] && continue
  if tr '\000' '\n' < "$dir/environ" 2>/dev/null | grep -qxF "$marker"; then
    if [ "$action" = "list" ]; then
      printf '%s\t%s\n' "$pid" "$(tr '\000' ' ' < "$dir/cmdline" 2>/dev/null)"
    else
      kill -s "$action" "$pid" 2>/dev/null && printf '%s\n' "$pid"
    fi
  fi
done
true
"""
