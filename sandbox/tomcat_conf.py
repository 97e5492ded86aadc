"""The files of one Tomcat 10 instance (a ``CATALINA_BASE``) and the node's control script.

Every instance of every sandbox host shares Debian's ``CATALINA_HOME``
(``/usr/share/tomcat10``) and has a base of its own: Debian's ``web.xml``,
``catalina.properties`` and ``context.xml`` copied from ``/etc/tomcat10`` (a
separate base ignores ``/etc/tomcat10``), and a ``server.xml`` written here with
the instance's own HTTP, shutdown and cluster ports, all bound to the host's
loopback address, so two instances on one host and two hosts never collide.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
from pathlib import Path
from xml.sax.saxutils import quoteattr

CATALINA_HOME = Path("/usr/share/tomcat10")
DEBIAN_CONF = Path("/etc/tomcat10")
MANAGER_DOCBASE = Path("/usr/share/tomcat10-admin/manager")
MANAGER_USER = "deploy"
COPIED = ("web.xml", "catalina.properties", "context.xml")  # Debian's, as shipped
# Low, so two members started at once wait 10 s for each other, not Tomcat's 60 s.
STATE_TRANSFER_TIMEOUT = 10
SUBDIRS = ("conf/Catalina/localhost", "webapps", "logs", "work", "temp", "lib", "bin")

SETENV = """# Sourced by catalina.sh as CATALINA_BASE/bin/setenv.sh: the instance's JVM options.
CATALINA_OPTS="-Xms32m -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto"
"""


@dataclasses.dataclass(frozen=True)
class Member:
    """One instance as a cluster member: where its receiver listens."""

    address: str
    port: int
    index: int  # makes the member's uniqueId unique within its host


@dataclasses.dataclass(frozen=True)
class Base:
    """What makes one ``CATALINA_BASE`` differ from another."""

    path: Path
    address: str
    http_port: int
    shutdown_port: int
    cluster_port: int
    members: tuple[Member, ...] = ()  # empty: no session replication


def write_base(base: Base, password: str) -> None:
    """Lay out the base; the WAR is not part of it (``webapps/ROOT.war`` comes later).

    ``server.xml`` holds the shutdown word and ``tomcat-users.xml`` the manager
    password, so both are written readable by their owner only."""
    for sub in SUBDIRS:
        (base.path / sub).mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copyfile(DEBIAN_CONF / name, base.path / "conf" / name)
    if not base.members:
        _expire_quickly(base.path / "conf" / "context.xml")
    _private(base.path / "conf" / "server.xml", server_xml(base, secrets.token_hex(16)))
    _private(base.path / "conf" / "tomcat-users.xml", users_xml(password))
    manager = base.path / "conf" / "Catalina" / "localhost" / "manager.xml"
    manager.write_text(MANAGER_XML.format(docbase=quoteattr(str(MANAGER_DOCBASE))))
    setenv = base.path / "bin" / "setenv.sh"
    if not setenv.exists():  # the deploy tool may deliver its own (jettyrc_path)
        setenv.write_text(SETENV)


def _expire_quickly(context: Path) -> None:
    """Look for idle sessions every second (Tomcat: every 60 s), so a session that times
    out ends, and a version left without sessions can retire, within a second or two.
    (An instance in a cluster has the cluster's manager, which keeps its own pace.)"""
    text = context.read_text()
    manager = '<Manager pathname="SESSIONS.ser" />'
    if manager not in text:
        raise RuntimeError(f"{context}: Debian's <Manager> is not there to tune; see its file")
    context.write_text(text.replace(manager, EXPIRING_MANAGER))


def _private(path: Path, text: str) -> None:
    """Write ``text`` to a file created with mode 600 (never readable by others, not even
    for a moment between a write and a chmod)."""
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(text)


def server_xml(base: Base, shutdown_word: str) -> str:
    """The instance's server.xml: one HTTP connector, the manager's realm, one Host
    that deploys ``webapps/`` at start only (the restart is the deploy)."""
    cluster = cluster_xml(base) if base.members else ""
    return SERVER_XML.format(
        address=quoteattr(base.address),
        http_port=base.http_port,
        shutdown_port=base.shutdown_port,
        shutdown=quoteattr(shutdown_word),
        cluster=cluster,
    )


def cluster_xml(base: Base) -> str:
    """Session replication between the host's instances: every session goes to every
    member (DeltaManager), members listed statically (no multicast on loopback).

    Synchronous, acknowledged sends (``channelSendOptions="6"``): with the write-up's
    asynchronous ones (8, with a MessageDispatchInterceptor) a login's attribute change
    could overtake the session's creation and be dropped, measured here as 9 of 30
    fresh logins missing on the other colour for good."""
    members = "\n".join(
        MEMBER_XML.format(address=quoteattr(m.address), port=m.port, unique_id=_unique_id(m.index))
        for m in base.members
    )
    return CLUSTER_XML.format(
        address=quoteattr(base.address),
        port=base.cluster_port,
        members=members,
        timeout=STATE_TRANSFER_TIMEOUT,
        interceptors="org.apache.catalina.tribes.group.interceptors",
    )


def _unique_id(index: int) -> str:
    """Tribes wants 16 bytes; members of one host differ in the last one."""
    return '"{' + ",".join(["0"] * 15 + [str(index + 1)]) + '}"'


def users_xml(password: str) -> str:
    """One user with the ``manager-script`` role: the text API, nothing else."""
    return USERS_XML.format(user=quoteattr(MANAGER_USER), password=quoteattr(password))


SERVER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by sandbox.tomcat: this instance's ports, all on its host's address. -->
<Server port="{shutdown_port}" address={address} shutdown={shutdown}>
  <Listener className="org.apache.catalina.startup.VersionLoggerListener" />
  <Listener className="org.apache.catalina.core.JreMemoryLeakPreventionListener" />
  <Listener className="org.apache.catalina.mbeans.GlobalResourcesLifecycleListener" />
  <Listener className="org.apache.catalina.core.ThreadLocalLeakPreventionListener" />
  <GlobalNamingResources>
    <Resource name="UserDatabase" auth="Container" type="org.apache.catalina.UserDatabase"
              factory="org.apache.catalina.users.MemoryUserDatabaseFactory"
              pathname="conf/tomcat-users.xml" />
  </GlobalNamingResources>
  <!-- No gracefulStopAwaitMillis: it waits for idle keep-alive connections too (haproxy's),
       making every stop take its full time. Requests in flight still finish: a context
       waits up to its unloadDelay (2 s) for them before it stops. -->
  <Service name="Catalina">
    <Connector address={address} port="{http_port}" protocol="HTTP/1.1"
               connectionTimeout="20000" />
    <Engine name="Catalina" defaultHost="localhost" backgroundProcessorDelay="1">{cluster}
      <Realm className="org.apache.catalina.realm.LockOutRealm">
        <Realm className="org.apache.catalina.realm.UserDatabaseRealm"
               resourceName="UserDatabase" />
      </Realm>
      <!-- No hot deploy: a WAR is picked up when the instance (re)starts, never
           half-copied. The manager deploys at run time without it. -->
      <Host name="localhost" appBase="webapps" unpackWARs="true"
            autoDeploy="false" deployOnStartup="true" />
    </Engine>
  </Service>
</Server>
"""

EXPIRING_MANAGER = '<Manager pathname="SESSIONS.ser" processExpiresFrequency="1" />'

CLUSTER_XML = """
      <Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelSendOptions="6">
        <Manager className="org.apache.catalina.ha.session.DeltaManager"
                 expireSessionsOnShutdown="false" notifyListenersOnReplication="true"
                 stateTransferTimeout="{timeout}" />
        <Channel className="org.apache.catalina.tribes.group.GroupChannel">
          <Membership className="org.apache.catalina.tribes.membership.StaticMembershipService">
{members}
          </Membership>
          <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver"
                    address={address} port="{port}" autoBind="0" selectorTimeout="5000"
                    maxThreads="6" />
          <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">
            <Transport className="org.apache.catalina.tribes.transport.nio.PooledParallelSender" />
          </Sender>
          <Interceptor className="{interceptors}.TcpPingInterceptor" />
          <Interceptor className="{interceptors}.TcpFailureDetector" />
        </Channel>
        <Valve className="org.apache.catalina.ha.tcp.ReplicationValve" filter="" />
        <ClusterListener className="org.apache.catalina.ha.session.ClusterSessionListener" />
      </Cluster>"""

MEMBER_XML = """            <Member className="org.apache.catalina.tribes.membership.StaticMember"
                    host={address} port="{port}" uniqueId={unique_id} />"""

USERS_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by sandbox.tomcat; the password is the one in the sandbox's password file. -->
<tomcat-users xmlns="http://tomcat.apache.org/xml" version="1.0">
  <role rolename="manager-script" />
  <user username={user} password={password} roles="manager-script" />
</tomcat-users>
"""

# Debian's manager app, shared by every base. A descriptor here overrides the app's own
# META-INF/context.xml, so its RemoteCIDRValve (loopback only) is restated.
MANAGER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Context docBase={docbase} antiResourceLocking="false" privileged="true">
  <Valve className="org.apache.catalina.valves.RemoteCIDRValve" allow="127.0.0.0/8, ::1/128" />
</Context>
"""

NODE_SCRIPT = r"""#!/bin/bash
# This node's Tomcat instances: CATALINA_BASE ~/tomcat/NAME, Debian's CATALINA_HOME.
#   ~/bin/tomcat NAME restart  stop the instance's JVM (SIGTERM, wait) and start a new one;
#                              returns at once: the work goes on detached (setsid, every fd
#                              redirected), so `ssh node ~/bin/tomcat NAME restart` ends now
#   ~/bin/tomcat NAME start    the same, unless it runs already
#   ~/bin/tomcat NAME stop     stop it; returns once the JVM is gone
#   ~/bin/tomcat NAME status   exit 0 while it runs
# Restarts of one instance take turns (flock), so two never start two JVMs.
set -u
name=${1:-} action=${2:-}
usage() { echo "usage: tomcat NAME restart|start|stop|status" >&2; exit 2; }
case $name in ''|*[!a-z0-9_-]*) usage ;; esac
base=$HOME/tomcat/$name
pid_file=$HOME/run/tomcat-$name.pid
[ -d "$base/conf" ] || { echo "tomcat: no instance $name ($base)" >&2; exit 2; }
export CATALINA_HOME=__HOME__ CATALINA_BASE=$base CATALINA_TMPDIR=$base/temp

running() {  # the PID file names a live process of this base (not a zombie, not a reused PID)
  pid=$(cat "$pid_file" 2>/dev/null) || return 1
  case $pid in ''|*[!0-9]*) return 1;; esac
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || return 1
  case $state in Z*|X*|'') return 1;; esac
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "CATALINA_BASE=$base"
}

stop() {
  running || { rm -f "$pid_file"; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 300); do running || break; sleep 0.1; done
  if running; then kill -KILL "$pid"; sleep 0.2; fi
  rm -f "$pid_file"
}

take_turn() { exec 9>>"$base/.control.lock"; flock 9; }

case $action in
  _run)  # the detached part: the PID file names this process, which becomes the JVM
    take_turn
    stop
    echo $$ >"$pid_file"
    exec 9>&-
    echo "$(date +%T.%N) starting $name"
    exec "$CATALINA_HOME/bin/catalina.sh" run ;;
  restart|start)
    if [ "$action" = start ] && running; then exit 0; fi
    echo "$(date +%T.%N) ~/bin/tomcat $name $action" >>"$base/logs/catalina.out"
    setsid "$(readlink -f "$0")" "$name" _run </dev/null >>"$base/logs/catalina.out" 2>&1 &
    ;;
  stop) take_turn; stop ;;
  status) running ;;
  *) usage ;;
esac
"""


def node_script() -> str:
    """The node's ``~/bin/tomcat``, with Debian's CATALINA_HOME filled in."""
    return NODE_SCRIPT.replace("__HOME__", str(CATALINA_HOME))
