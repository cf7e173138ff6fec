from fleetops.bench.cli import bench_app

bench_app(prog_name="python -m fleetops.bench")
