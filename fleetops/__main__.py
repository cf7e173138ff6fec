from fleetops.cli.main import main

main()
