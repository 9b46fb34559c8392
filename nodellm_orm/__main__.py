"""`python -m nodellm_orm`: the `nodellm-orm` command, for when its script is not on PATH."""

from .cli import main

main(prog_name="nodellm-orm")
