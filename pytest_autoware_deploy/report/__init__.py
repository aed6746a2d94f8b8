"""The deploy report: ``deploy_report.json`` (a contract), ``deploy_report.md`` and figures."""
