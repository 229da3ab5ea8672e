from hilnet.cli import main

main()
