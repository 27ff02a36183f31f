"""What is valid, whoever asks: the rules of callbacks, schedules, policies, rates, whitelist patterns and
headers, the table of bounds, and the service's vocabulary.

Pure: no writes, and no imports from the API, the admin, the commands, the services, the delivery engine
or monitoring. Everything above calls these rules, so the API, a form, a command and a schedule's fire
refuse the same input for the same reason.
"""
