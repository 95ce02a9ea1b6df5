from loot.cli.main import main

main()
