"""`python -m resonate`: the same as the `resonate` command."""

from resonate.cli.main import main

if __name__ == "__main__":
    main()
