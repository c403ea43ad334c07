# Sourced by ./tether and ./run-tests: finds a JDK 25 and exports JAVA_HOME.
# Order (DESIGN 1): $JAVA_HOME, then /usr/lib/jvm/*25*, then `java` on PATH — each only if it is 25+.

tether_java_major() {  # prints the major version of the java binary $1, or nothing
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}

tether_find_jdk() {
  local candidate major
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/*25* ; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] && [ -x "$candidate/bin/javac" ] || continue
    major=$(tether_java_major "$candidate/bin/java")
    if [ -n "$major" ] && [ "$major" -ge 25 ]; then
      printf '%s\n' "$candidate"; return 0
    fi
  done
  if command -v java >/dev/null 2>&1; then
    candidate=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
    major=$(tether_java_major "$candidate/bin/java")
    if [ -n "$major" ] && [ "$major" -ge 25 ]; then
      printf '%s\n' "$candidate"; return 0
    fi
  fi
  return 1
}

if ! TETHER_JDK=$(tether_find_jdk); then
  echo "tether: no JDK 25 found (looked at \$JAVA_HOME, /usr/lib/jvm/*25*, java on PATH); install one or set JAVA_HOME" >&2
  exit 2
fi
export JAVA_HOME="$TETHER_JDK"
