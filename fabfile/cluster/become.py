"""Acting on a node as another user (``become_user``): through ``sudo -n -u USER``.

Nodes run Jetty and Tomcat as their own users (Debian's ``jetty``, ``tomcat``) with
the webapps owned by them, while people log in as themselves or as ``deploy``. With
``become_user`` set, every write to the app's live files (the WAR, config.properties,
.jettyrc, logback.xml, their temporary copies) and the restart command run as that
user through ``sudo -n`` (never a prompt: a sudo that wants a password fails at
once); what stays under ``releases_dir`` (the blobs, records and claims) stays the
SSH user's. Unset, the same commands run as the SSH user, with no sudo.

`PUT` defines ``put``, which writes one file beside its target: its bytes come on stdin
(never on a command line), its checksum is checked, and it takes the target's mode and,
where the user may, its owner and group, so an admin's ``chmod 600`` survives.
"""

from __future__ import annotations

import shlex

WORD = "become"  # the holdings line that says whether sudo runs without a password
_OK = "ok"
CHANGED = "blob-changed"  # as `fabfile.cluster.placement` reads it back
CHANGED_EXIT = 65

# put SHA TEMP TARGET PARENT HASH < BLOB, as the file's writer: a shell function, so the
# SSH user's copies fork no ``sh`` (`calling`). A new file (no target yet) keeps what the
# writer's umask gives (0644 with Debian's 022). HASH ``big`` (a WAR) is hashed by
# openssl, 3x faster on a big file with the CPU's SHA instructions; a small one by
# sha256sum, which starts 3 ms sooner. Called where ``set -e`` does not hold (before
# ``||``), so each step returns its own failure.
PUT = (
    'put() { [ -d "$4" ] || mkdir -p -- "$4" || return; cat > "$2" || return; '
    'if [ "$5" = big ]; then s=$(openssl dgst -sha256 -r "$2" 2>/dev/null || sha256sum "$2"); '
    'else s=$(sha256sum "$2" 2>/dev/null || openssl dgst -sha256 -r "$2"); fi || return; '
    f's=${{s%% *}}; if [ "$s" != "$1" ]; then rm -f -- "$2"; '
    f'printf "{CHANGED} %s %s\\n" "$1" "$s"; return {CHANGED_EXIT}; fi; '
    'if [ -e "$3" ]; then chmod --reference="$3" -- "$2" || return; '
    'chown --reference="$3" -- "$2" 2>/dev/null || true; fi; }'
)


def calling(user: str) -> str:
    """The words that run `PUT` (defined earlier in the script) as ``user``: the function
    itself for the SSH user; through sudo, a ``sh`` that defines it again and runs it."""
    if not user:
        return "put"
    script = PUT + '; put "$@"'
    return f"{prefix(user)}sh -c {shlex.quote(script)} sh"


def prefix(user: str) -> str:
    """The words before a command that runs it as ``user`` ('' for the SSH user)."""
    return f"sudo -n -u {shlex.quote(user)} -- " if user else ""


def shell(user: str, script: str) -> str:
    """``script`` run by ``sh`` as ``user``; as it is when no user is named."""
    if not user:
        return script
    return f"{prefix(user)}sh -c {shlex.quote(script)}"


def check_script(user: str) -> str:
    """Print ``become ok``, or ``become WHAT SUDO SAID``, when a user is named."""
    if not user:
        return ""
    said = f"$( {prefix(user)}sh -c 'echo {_OK}' 2>&1 </dev/null | tr '\\n' ' ')"
    return f'printf "{WORD} %s\\n" "{said}"; '


def refused(said: str | None) -> str:
    """What sudo said when it refused ('' when it ran, or was not asked)."""
    if said is None:
        return ""
    said = said.strip()
    return "" if said == _OK else (said or "sudo printed nothing")


def refusal(label: str, login: str, user: str, said: str) -> str:
    """The sentence pre-flight refuses a node with: what sudo wants, and the fix."""
    who = login or "the SSH user"
    rule = f"{login or 'USER'} ALL=({user}) NOPASSWD: ALL"
    if "password" in said:
        what = f"sudo on {label} wants a password for {who}"
    elif "not found" in said:
        what = f"sudo is not installed on {label} ({said})"
    else:
        what = f"sudo on {label} refused {who} running commands as {user} ({said})"
    return (
        f"{what}: add a NOPASSWD rule for {who} to run commands as {user} "
        f"(`{rule}` in visudo -f /etc/sudoers.d/wardeploy), or unset become_user"
    )
