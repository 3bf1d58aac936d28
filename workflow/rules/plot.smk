# Stage 3: figure-ready NetCDF -> PNG and PDF in the paper's layout, from that file only.
# One rule per figure, so that each carries its own report caption.

for _fig in FIGURES:

    rule:
        name:
            f"plot_{_fig}"
        input:
            f"results/figures/{_fig}.nc",
        output:
            [
                (
                    report(
                        f"results/figures/{_fig}.{ext}",
                        caption=f"../report/{_fig}.rst",
                        category="Figures",
                        labels={"figure": _fig},
                    )
                    if ext == "png"
                    else f"results/figures/{_fig}.{ext}"
                )
                for ext in FORMATS
            ],
        log:
            f"results/logs/figures/{_fig}.plot.log",
        params:
            figure=_fig,
            time_unit=config["plot"]["time_unit"],
            dpi=config["plot"]["dpi"],
            sources=figure_sources(_fig),
            settings=sweeps.figure_settings(config, _fig),
        localrule: True
        conda:
            "../../envs/spinvalve.yaml"
        shell:
            "spinvalve plot {params.figure} {input} --output {output} "
            "--time-unit {params.time_unit} --dpi {params.dpi} > {log} 2>&1"
