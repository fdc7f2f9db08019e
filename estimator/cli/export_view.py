"""Export-control views for `suanli chips --export` and `suanli chip ID` (ECCN 3A090 test)."""
from __future__ import annotations

from estimator.cli.render import console, emit_json, table
from estimator.scenarios.export_control import RULE, classify

EXPORT_COLUMNS = [("id", "id"), ("vendor", "vendor"), ("tpp", "TPP"), ("tpp_basis", "TPP from"),
                  ("die_area_mm2", "die mm2"), ("density", "density"), ("class", "class"),
                  ("confidence", "confidence"), ("why", "why / missing")]


def export_rows(chips) -> list[dict]:
    rows = []
    for c in chips:
        e = classify(c).to_dict()
        short = [m.split(" (")[0] for m in e["missing"]]
        rows.append({"id": c.id, "vendor": c.vendor, **e,
                     "why": e["reason"] + (f"; missing: {', '.join(short)}" if short else "")})
    return rows


def show_chips_export(chips, as_json: bool) -> None:
    rows = export_rows(chips)
    if as_json:
        emit_json(rows)
        return
    view = [{**r, "tpp": None if r["tpp"] is None else f"{r['tpp']:,.0f}",
             "die_area_mm2": None if r["die_area_mm2"] is None else f"{r['die_area_mm2']:g}",
             "density": None if r["density"] is None else f"{r['density']:.2f}"} for r in rows]
    table(f"{len(rows)} chips: {RULE}; TPP = dense peak x bit length (max), density = TPP / die area",
          EXPORT_COLUMNS, view)
    console.print("Performance test only: whether the rule reaches a part also depends on its origin, "
                  "the buyer and licence exceptions. '-' = not known.")


def chip_export(chip) -> dict:
    return classify(chip).to_dict()


def print_chip_export(chip) -> None:
    e = classify(chip)
    tpp = "unknown" if e.tpp is None else f"{e.tpp:,.0f} ({e.tpp_basis})"
    dens = ("unknown" + (" (die area unknown)" if e.die_area_mm2 is None else "")) if e.density is None \
        else f"{e.density:.2f} per mm2 over {e.die_area_mm2:g} mm2"
    console.print(f"export control ({RULE}): TPP {tpp}; density {dens}; class {e.klass}: {e.reason}"
                  + (f"; missing: {', '.join(e.missing)}" if e.missing else ""))
