from afcmd.cli import main

main()
