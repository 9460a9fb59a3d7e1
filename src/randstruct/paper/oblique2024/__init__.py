"""Schuessler, Mastrogiuseppe, Ostojic and Barak 2024, "Aligned and oblique dynamics in recurrent
neural networks" (eLife): its "neuro" experiments, figures and claims from the same engine as the
2020 paper (docs/claims-oblique2024.md)."""
