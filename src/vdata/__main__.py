"""`python -m vdata ...`: the `vdata` command (the server's benchmark schedule runs it this way)."""

from vdata.cli import main

if __name__ == "__main__":
    main()
