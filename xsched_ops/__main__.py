from xsched_ops.cli import main

if __name__ == "__main__":
    main()
