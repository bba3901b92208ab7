"""`python -m harness.cli ...` runs the same command as the `ibgw` script."""

from .main import main

if __name__ == "__main__":
    main(prog_name="ibgw")
