"""known_hosts: every readable line is used, the others are left alone."""

from __future__ import annotations

from pathlib import Path

import paramiko

from fabfile.cluster import hostkeys


def test_lines_paramiko_cannot_read_do_not_stop_the_rest(tmp_path: Path) -> None:
    key = paramiko.Ed25519Key.generate() if hasattr(paramiko.Ed25519Key, "generate") else None
    if key is None:
        key = paramiko.RSAKey.generate(1024)
    known = tmp_path / "known_hosts"
    known.write_text(
        "# a comment\n"
        "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n"
        "web0 sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t\n"
        f"web1 {key.get_name()} {key.get_base64()}\n"
    )
    client = paramiko.SSHClient()
    hostkeys.load(client, known)
    assert client.get_host_keys().lookup("web1")[key.get_name()] == key


def test_trust_on_first_use_appends_one_line_and_keeps_the_file(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("# mine\n@cert-authority * ssh-ed25519 AAAA\n")
    key = paramiko.RSAKey.generate(1024)
    client = paramiko.SSHClient()
    hostkeys.TrustOnFirstUse(known).missing_host_key(client, "[web2]:2222", key)
    lines = known.read_text().splitlines()
    assert lines[:2] == ["# mine", "@cert-authority * ssh-ed25519 AAAA"]
    assert lines[2] == f"[web2]:2222 {key.get_name()} {key.get_base64()}"
    assert client.get_host_keys().lookup("[web2]:2222") is not None
