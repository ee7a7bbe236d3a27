"""Field mapping and write policies (`SYNC_MAPPING_FILE`, DESIGN.md): which person field lands in
which CRM property, and how it is written.

- `model.py`: the file as frozen dataclasses (the rule shape is `connectors.fieldrules.Rule`);
- `load.py`: YAML -> model, every problem with its line;
- `check.py`: a target's section against what its CRM has (pure);
- `plan.py`: load + check before the first write, rules handed to the sink;
- `apply.py`: desired values + the CRM's current ones + policies -> what is sent (pure);
- `__main__.py`: `python -m pipelines.mapping --print-default hubspot|salesforce`.
"""
