"""`python -m components.schema`: print the JSON Schema of a stack file (stacks/schema.json)."""

import json

from components.config.schema import stack_file_schema

if __name__ == "__main__":
    print(json.dumps(stack_file_schema(), indent=2, sort_keys=True))
