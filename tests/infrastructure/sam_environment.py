"""Run by the SAM CLI's own interpreter (``.tools/bin/python``): the environment ``sam local invoke`` would give a
function, printed as JSON. ``python sam_environment.py <template> <function> <env-vars file> <parameters JSON>``.

It calls SAM's own code (the function provider that resolves the template, the runner that merges the env-vars
file) so that ``tests/infrastructure/test_local_invoke.py`` can hold ``devkit.invoke`` to it. These are SAM
internals: a SAM upgrade (requirements-tools.lock) that moves them fails that test, on purpose.
"""

import json
import sys

from samcli.commands.local.lib.local_lambda import LocalLambdaRunner  # type: ignore[import-not-found]
from samcli.lib.providers.provider import Stack  # type: ignore[import-not-found]
from samcli.lib.providers.sam_function_provider import SamFunctionProvider  # type: ignore[import-not-found]
from samcli.yamlhelper import yaml_parse  # type: ignore[import-not-found]


def main() -> None:
    template_path, function, env_vars_path, parameters = sys.argv[1:5]
    with open(template_path, encoding="utf-8") as template_file:
        template = yaml_parse(template_file.read())
    provider = SamFunctionProvider([Stack("", "", template_path, json.loads(parameters), template)])
    runner = LocalLambdaRunner.__new__(LocalLambdaRunner)  # only its env-vars merging is used
    with open(env_vars_path, encoding="utf-8") as env_vars_file:
        runner.env_vars_values = json.load(env_vars_file)
    runner.get_aws_creds = lambda: {"region": "eu-central-1", "key": "key", "secret": "secret"}
    runner.is_debugging = lambda: False
    json.dump(runner._make_env_vars(provider.get(function)).resolve(), sys.stdout)


if __name__ == "__main__":
    main()
