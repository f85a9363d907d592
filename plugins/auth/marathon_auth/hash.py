"""``marathon-auth-passwd``: a password hash or a new bearer token for the users file.

The password is read from standard input (one line) when it is not a terminal, so
scripts can pipe it; otherwise it is asked for twice without echo. It never comes
from the command line, where ``ps`` and shell history would show it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from marathon_auth.passwords import hash_password, hash_token, new_token


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="marathon-auth-passwd",
        description="Print a scrypt password hash (or, with --token, a new bearer token and "
        "its hash) for marathon-auth's --auth_users file.",
    )
    parser.add_argument(
        "--token", action="store_true", help="make a new bearer token instead of a hash"
    )
    args = parser.parse_args(argv)
    if args.token:
        token = new_token()
        print(f"token: {token}")
        print(f"hash:  {hash_token(token)}")
        return 0
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("marathon-auth-passwd: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("marathon-auth-passwd: empty password", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
