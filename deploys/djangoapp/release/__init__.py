"""A release from source to live and back: the source packed (source), its dependencies planned
(dependencies) and built (build), its Django inspected (inspection), its migrations judged
(migration_gate) and run (migrate), the switch and its checks (switch), the record and the
pruning (finish); rollback and its steps (rollback, rollback_steps). release.py has the
whole flow in one function."""
